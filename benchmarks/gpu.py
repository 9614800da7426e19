"""The engine benchmark on a CUDA GPU: batch 1, 64 and 512, against the plain HF forward (bf16 autocast).

Fits on real tweets on CUDA, then runs ``benchmarks/engine.py``'s measurement with GPU
settings: every engine row with its own exits, efficiency by rows and by tokens, the
tokenize+pad time, the plain HF forward under the engine's attention-kernel choice, and
one pass per configuration under ``torch.cuda.set_sync_debug_mode("warn")`` counting real
host syncs per layer call. It writes ``gpu.{csv,md}`` to ``--out`` (default: ``$OUT`` when
set, else ``benchmarks/results``) and imports nothing beyond torch, transformers,
scikit-learn, pandas, numpy, joblib, tqdm, safetensors, matplotlib and skearly itself, so
it runs on a bare GPU machine (``tests/test_benchmarks_gpu.py`` checks this on CPU).

On a lent GPU machine without skearly's asset packages, first run (here, with the assets
installed) ``python benchmarks/prepare_gpu_assets.py``, which writes the packaged encoder
(fp16 weights, up-cast on load) and the tweets to the git-ignored folder ``gpu-assets/``;
that folder must travel with the repository (``carry: ["gpu-assets"]``). Then, there::

    PYTHONPATH=. python benchmarks/gpu.py --encoder gpu-assets/all-MiniLM-L6-v2 --data gpu-assets/tweets.csv
"""

import sys

from engine import main

#: The GPU settings (each can be overridden on the command line).
GPU_DEFAULTS = dict(
    device="cuda",
    n_train=8000,
    n_test=4000,
    b1_rows=500,
    batches="1,64,512",
    thresholds="1.0,0.99,0.95,0.9,0.85,0.8,0.7",
    repeats=5,
    block_rows="1:50,*:2048",
    name="gpu",
)

if __name__ == "__main__":
    main(sys.argv[1:], **GPU_DEFAULTS)
