"""Tune the threshold with GridSearchCV: one fine-tune per fold, not one per candidate.

``threshold`` (like ``exit_criterion`` and ``target_speedup``) only acts at predict
time, so every candidate of a fold can share one fine-tuned network. With
``memory=<folder>`` the estimator caches its fine-tuned network keyed on the
training data and the fit-time parameters: ``GridSearchCV`` over 8 thresholds with
``cv=3`` then fine-tunes 3 times (plus once for the final refit on all the data)
instead of 24 (+1). A second search over other predict-time settings, with the
same cache, fine-tunes no more at all.

This script counts the fine-tunes (from skearly's log) and times both searches.
By default it uses the real packaged encoder on a small sample of real tweets;
``--tiny`` runs in seconds on a tiny random encoder (used by the tests).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

from sklearn.model_selection import GridSearchCV

from skearly import EarlyExitTextClassifier
from skearly.datasets import load_tweet_sentiment
from skearly.encoders import make_tiny_encoder


class FitCounter(logging.Handler):
    """Counts skearly's "fitted" (fine-tuned) and "read from the fit cache" log records."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.fine_tunes = 0
        self.cache_reads = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("fitted in"):
            self.fine_tunes += 1
        elif message.startswith("read from the fit cache"):
            self.cache_reads += 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=1000, help="training tweets (default: 1000)")
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (default: 1)")
    parser.add_argument("--cv", type=int, default=3, help="cross-validation folds (default: 3)")
    parser.add_argument(
        "--thresholds", default="1.0,0.99,0.95,0.9,0.85,0.8,0.7,0.6", help="comma-separated thresholds (default: 8)"
    )
    parser.add_argument("--cache-dir", default=None, help="fit cache folder (default: a new temporary folder)")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random encoder (seconds; for tests)")
    args = parser.parse_args(argv)

    X_train, _, y_train, _ = load_tweet_sentiment(
        classes=("negative", "positive"), n_train=args.n_train, n_test=10, random_state=0
    )
    encoder = make_tiny_encoder(tempfile.mkdtemp()) if args.tiny else None  # None: packaged all-MiniLM-L6-v2
    extra = {"learning_rate": 3e-3, "batch_size": 16} if args.tiny else {}
    cache = args.cache_dir or tempfile.mkdtemp(prefix="skearly-fit-cache-")
    counter = FitCounter()
    logger = logging.getLogger("skearly")
    level = logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    try:
        run_searches(args, encoder, extra, cache, counter, X_train, y_train)
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)


def run_searches(args, encoder, extra, cache, counter, X_train, y_train) -> None:
    """The two grid searches, both through the fit cache ``cache``."""
    # random_state must be an int: only reproducible (seeded) fits are cached
    clf = EarlyExitTextClassifier(encoder, epochs=args.epochs, random_state=0, memory=cache, **extra)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    print(f"{len(X_train)} training tweets; {len(thresholds)} thresholds x cv={args.cv}; fit cache in {cache}")

    start = time.perf_counter()
    search = GridSearchCV(clf, {"threshold": thresholds}, cv=args.cv).fit(X_train, y_train)
    seconds = time.perf_counter() - start
    n_candidates = len(thresholds) * args.cv
    print(
        f"threshold search: {n_candidates} candidate fits + 1 refit -> {counter.fine_tunes} fine-tunes "
        f"({args.cv} folds + 1 refit on all the data), {counter.cache_reads} read from the cache; {seconds:.1f}s"
    )
    print(f"best threshold {search.best_params_['threshold']} (cv accuracy {search.best_score_:.3f})")
    results = search.cv_results_
    for threshold, score in zip(results["param_threshold"], results["mean_test_score"], strict=True):
        print(f"  threshold {threshold:<5} cv accuracy {score:.3f}")

    # same cache, other predict-time parameters: no fine-tune at all
    before = counter.fine_tunes
    start = time.perf_counter()
    grid = {"exit_criterion": ["max_proba", "entropy"], "threshold": [0.95, 0.8]}
    GridSearchCV(clf, grid, cv=args.cv).fit(X_train, y_train)
    print(
        f"criterion x threshold search: {len(grid['exit_criterion']) * 2 * args.cv} candidate fits + 1 refit -> "
        f"{counter.fine_tunes - before} fine-tunes; {time.perf_counter() - start:.1f}s"
    )


if __name__ == "__main__":
    main()
