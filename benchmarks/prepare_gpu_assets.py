"""Write the packaged encoder (fp16 weights) and the tweets into ``gpu-assets/`` to carry to a lent GPU machine.

The GPU machine has torch and transformers but none of skearly's asset packages, and only
the repository travels (64 MiB at most). The packaged all-MiniLM-L6-v2 re-saved with fp16
weights is about 45 MB; ``"dtype": "float32"`` in its config makes transformers up-cast the
weights on load. ``gpu-assets/`` is git-ignored: nothing third-party is committed.

Run: ``python benchmarks/prepare_gpu_assets.py``, then on the device machine
``PYTHONPATH=. python benchmarks/gpu.py --encoder gpu-assets/all-MiniLM-L6-v2 --data gpu-assets/tweets.csv``.
"""

import argparse
import csv
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from skearly.datasets import load_tweet_sentiment_frame
from skearly.encoders import default_encoder_path

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", default="gpu-assets")
parser.add_argument("--n-tweets", type=int, default=14000)
args = parser.parse_args()

out = Path(args.out)
encoder = out / "all-MiniLM-L6-v2"
if encoder.exists():
    shutil.rmtree(encoder)
source = default_encoder_path()
shutil.copytree(source, encoder, ignore=shutil.ignore_patterns("model.safetensors", "*.onnx", "onnx", "openvino"))
weights = load_file(source / "model.safetensors")
half = {k: v.half().contiguous() for k, v in weights.items()}
save_file(half, encoder / "model.safetensors", metadata={"format": "pt"})
config = json.loads((encoder / "config.json").read_text())
config["dtype"] = "float32"
(encoder / "config.json").write_text(json.dumps(config, indent=2))
frame = load_tweet_sentiment_frame()
frame = frame[frame["sentiment"].isin(["negative", "positive"])].sample(
    n=min(args.n_tweets, len(frame)), random_state=0
)
# every field quoted: tweets hold bare carriage returns, which an unquoted CSV would cut
frame[["text", "sentiment"]].to_csv(out / "tweets.csv", index=False, quoting=csv.QUOTE_ALL, lineterminator="\n")
size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
print(f"wrote {out}: {size / 2**20:.1f} MiB")
