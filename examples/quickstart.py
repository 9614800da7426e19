"""Quickstart: fit on real tweets with the real packaged encoder, then move the threshold.

One fit serves every speed/accuracy trade-off: for each threshold this prints the
test accuracy, the mean exit layer and the measured predict-time speed-up over full
depth (threshold 1.0). Run it with ``make demo`` (or ``python examples/quickstart.py``).

Use ``--tiny`` for a seconds-long run on a tiny random encoder (used by the tests).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from skearly import EarlyExitTextClassifier
from skearly.datasets import load_tweet_sentiment
from skearly.encoders import make_tiny_encoder


def timed_predict(clf: EarlyExitTextClassifier, X: list[str], repeats: int) -> float:
    """Median wall-clock seconds of ``clf.predict(X)`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        clf.predict(X)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=4000, help="training tweets (default: 4000)")
    parser.add_argument("--n-test", type=int, default=2000, help="test tweets (default: 2000)")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs (default: 2)")
    parser.add_argument("--classes", default="negative,positive", help="labels to keep (default: negative,positive)")
    parser.add_argument("--thresholds", default="1.0,0.99,0.95,0.9,0.8,0.7,0.6", help="comma-separated thresholds")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats per threshold (median)")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random encoder (seconds; for tests)")
    args = parser.parse_args(argv)

    X_train, X_test, y_train, y_test = load_tweet_sentiment(
        classes=args.classes.split(","), n_train=args.n_train, n_test=args.n_test, random_state=0
    )
    encoder = make_tiny_encoder(tempfile.mkdtemp()) if args.tiny else None  # None: packaged all-MiniLM-L6-v2
    print(f"torch threads: {torch.get_num_threads()}; train {len(X_train)}, test {len(X_test)} tweets")

    clf = EarlyExitTextClassifier(encoder, epochs=args.epochs, random_state=0, verbose=1)
    clf.fit(X_train, y_train)
    print(f"fitted in {clf.fit_time_:.0f}s; per-exit calibration on held-out data:")
    print(clf.calibration_report_.round(3).to_string(index=False))

    clf.predict(X_test[:64])  # warm-up
    clf.set_params(verbose=0)
    print(f"\n{'threshold':>9} {'accuracy':>8} {'mean exit layer':>15} {'predict s':>9} {'speed-up':>8}")
    full_time = None
    thresholds = sorted({float(t) for t in args.thresholds.split(",")} | {1.0}, reverse=True)  # full depth first
    for threshold in thresholds:
        clf.set_params(threshold=threshold)  # no refit
        seconds = timed_predict(clf, X_test, args.repeats)
        accuracy = clf.score(X_test, y_test)
        full_time = full_time if full_time is not None else seconds
        print(
            f"{threshold:>9.2f} {accuracy:>8.3f} {clf.exit_layers_.mean():>15.2f} "
            f"{seconds:>9.2f} {full_time / seconds:>7.2f}x"
        )


if __name__ == "__main__":
    main()
