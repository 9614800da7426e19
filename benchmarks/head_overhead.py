"""What the exit heads and exit decisions cost, with no row exiting.

Runs the packaged encoder with 6 untrained exit heads over 300 real tweets at batch size 1
and 64, twice: ``threshold=1.0`` (intermediate heads skipped) and ``threshold=0.9999`` (every
head evaluated and every exit decision taken, but no row reaches the threshold). The
difference is the pure overhead of early exit. Run: ``python benchmarks/head_overhead.py``.
"""

import argparse
import time

import numpy as np
import torch
from transformers import AutoTokenizer

from skearly.datasets import load_tweet_sentiment
from skearly.encoders import default_encoder_path
from skearly.exit_criteria import MaxProbability
from skearly.inference import InferenceEngine
from skearly.network import MultiExitNetwork
from skearly.schedulers import ShrinkingScheduler

argparse.ArgumentParser(description=__doc__).parse_args()
torch.set_num_threads(2)
path = str(default_encoder_path())
_, X, _, _ = load_tweet_sentiment(n_test=300)
tokenizer = AutoTokenizer.from_pretrained(path)
network = MultiExitNetwork.from_pretrained(path, exit_layers=range(1, 7), n_classes=3).eval()
temperatures = np.ones(6)


def run(threshold: float, batch_size: int) -> None:
    engine = InferenceEngine(
        network, tokenizer, temperatures, 128, batch_size, torch.device("cpu"), ShrinkingScheduler()
    )
    engine.predict(X, None, MaxProbability(), threshold)


for batch_size in (1, 64):
    run(1.0, batch_size)
    seconds: dict[float, list[float]] = {1.0: [], 0.9999: []}
    for _ in range(3):
        for threshold in seconds:
            start = time.perf_counter()
            run(threshold, batch_size)
            seconds[threshold].append(time.perf_counter() - start)
    plain, heads = np.median(seconds[1.0]), np.median(seconds[0.9999])
    print(
        f"batch {batch_size}: no intermediate heads {plain:.3f}s, every head + exit decision (no exit) "
        f"{heads:.3f}s -> overhead {100 * (heads / plain - 1):.1f}%"
    )
