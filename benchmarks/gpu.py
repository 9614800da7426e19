"""The engine benchmark on a CUDA GPU: batch 1, 64 and 512, old vs new engine, against the plain HF forward (bf16).

Fits on real tweets on CUDA, then runs ``benchmarks/engine.py``'s measurement with GPU
settings, writing ``benchmarks/results/gpu.{csv,md}`` (GPU name and versions in the file).
Budget: under 5 minutes on an H200.

On a lent GPU machine without skearly's asset packages, first run (here, with the assets
installed) ``python benchmarks/prepare_gpu_assets.py``, which writes the packaged encoder
(fp16 weights, up-cast on load) and the tweets to the ignored folder ``gpu-assets/``; carry
that folder and run there::

    PYTHONPATH=. python benchmarks/gpu.py --encoder gpu-assets/all-MiniLM-L6-v2 --data gpu-assets/tweets.csv
"""

import sys

from engine import main

if __name__ == "__main__":
    main(
        sys.argv[1:],
        device="cuda",
        n_train=8000,
        n_test=4000,
        b1_rows=500,
        batches="1,64,512",
        thresholds="1.0,0.9,0.85,0.8,0.7",
        repeats=3,
        name="gpu",
    )
