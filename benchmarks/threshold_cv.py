"""EarlyExitThresholdCV vs GridSearchCV(memory=...): same folds, same 8 thresholds, same choice, wall clock.

Real packaged encoder (all-MiniLM-L6-v2), 600 real tweets (negative vs positive), 1 epoch,
``StratifiedKFold(3)``, 8 thresholds, ``refit=False`` for both (the search only; a refit costs
both the same one fine-tune). ``GridSearchCV`` gets ``memory=`` a fresh folder per run, so it
fine-tunes once per fold and predicts once per (threshold, fold); ``EarlyExitThresholdCV``
fine-tunes once per fold and runs one full-depth pass per fold (``exit_curve``). The runs are
interleaved (grid, search, search, grid, ...) with ``--repeats 2`` or more, so that both see the
same machine load.

Run (holding the machine-wide timing lock)::

    flock /tmp/skearly-timing.lock python benchmarks/threshold_cv.py

Writes ``benchmarks/results/threshold_cv.csv`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import FineTuneCounter, command, count_fine_tunes, header, write_results
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skearly import EarlyExitTextClassifier
from skearly.datasets import load_tweet_sentiment
from skearly.model_selection import EarlyExitThresholdCV

GRID = [0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0]
RESULTS = Path(__file__).parent / "results"


def run(method: str, X, y, folds, counter: FineTuneCounter) -> dict:
    counter.count = 0
    memory = tempfile.mkdtemp(prefix="skearly-bench-cache-")
    clf = EarlyExitTextClassifier(epochs=1, random_state=0, memory=memory if method == "GridSearchCV" else None)
    start = time.perf_counter()
    if method == "GridSearchCV":
        search = GridSearchCV(clf, {"threshold": GRID}, cv=folds, refit=False).fit(X, y)
        best = search.best_params_["threshold"]
    else:
        search = EarlyExitThresholdCV(clf, thresholds=GRID, cv=folds, refit=False).fit(X, y)
        best = search.best_threshold_
    seconds = time.perf_counter() - start
    return {
        "method": method,
        "seconds": seconds,
        "fine_tunes": counter.count,
        "best_threshold": best,
        "mean_test_score": [round(float(v), 6) for v in search.cv_results_["mean_test_score"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each method, interleaved")
    args = parser.parse_args()
    X, _, y, _ = load_tweet_sentiment(classes=("negative", "positive"), n_train=600, random_state=0)
    folds = list(StratifiedKFold(3).split(np.zeros(len(y)), y))
    counter = count_fine_tunes()
    order = []
    for r in range(args.repeats):
        order += ["GridSearchCV", "EarlyExitThresholdCV"] if r % 2 == 0 else ["EarlyExitThresholdCV", "GridSearchCV"]
    rows = []
    load_before = os.getloadavg()[0]
    for i, method in enumerate(order):
        row = {"run": i, **run(method, X, y, folds, counter)}
        print(row, flush=True)
        rows.append(row)
        write_results(RESULTS, "threshold_cv", table=pd.DataFrame(rows))  # after each run: partial results
    frame = pd.DataFrame(rows)

    mean = frame.groupby("method")["seconds"].mean()
    same_choice = frame["best_threshold"].nunique() == 1
    same_scores = frame["mean_test_score"].map(tuple).nunique() == 1
    grid_row = frame[frame["method"] == "GridSearchCV"].iloc[0]
    search_row = frame[frame["method"] == "EarlyExitThresholdCV"].iloc[0]
    scores = pd.DataFrame(
        {
            "threshold": GRID,
            "GridSearchCV": grid_row["mean_test_score"],
            "EarlyExitThresholdCV": search_row["mean_test_score"],
        }
    )
    command_line = "flock /tmp/skearly-timing.lock " + command(__file__)
    lines = header("Exit-threshold search: EarlyExitThresholdCV vs GridSearchCV(memory=...)", command_line) + [
        "Real packaged encoder (all-MiniLM-L6-v2, 6 layers), 600 real tweets (negative vs positive) from",
        "`load_tweet_sentiment(classes=('negative', 'positive'), n_train=600, random_state=0)`, 1 epoch,",
        f"`random_state=0`, the same `StratifiedKFold(3)` folds for both, {len(GRID)} thresholds {GRID},",
        "`refit=False` for both (the final refit costs both the same one fine-tune). CPU,",
        "`predict_batch_size=64`. Runs in the order of `threshold_cv.csv`; `GridSearchCV` gets a fresh",
        "`memory=` folder per run.",
        "",
        "| method | runs | mean seconds | fine-tunes per run | best threshold |",
        "|---|---|---|---|---|",
    ]
    for method in ("GridSearchCV", "EarlyExitThresholdCV"):
        part = frame[frame["method"] == method]
        lines.append(
            f"| {method} | {len(part)} | {mean[method]:.1f} | {part['fine_tunes'].iloc[0]} "
            f"| {part['best_threshold'].iloc[0]} |"
        )
    lines += [
        "",
        f"**EarlyExitThresholdCV took {mean['EarlyExitThresholdCV'] / mean['GridSearchCV']:.2f}x the time of "
        f"GridSearchCV(memory=...)** (mean over runs). Same best threshold in every run: {same_choice}; "
        f"same mean cross-validated accuracy for every threshold in every run: {same_scores}.",
        "",
        "Both fine-tune once per fold; the difference is the scoring: `GridSearchCV` runs one early-exit",
        f"`predict` per threshold and fold ({len(GRID)} x 3 = {len(GRID) * 3} passes over a validation fold),",
        "`EarlyExitThresholdCV` one full-depth pass per fold (3) and replays the exit rule for every threshold.",
        "The fine-tunes dominate both times; the more thresholds, the larger the gap.",
        "",
        "Mean cross-validated accuracy per threshold (first run of each):",
        "",
        scores.to_markdown(index=False),
        "",
        f"The machine may be shared with other jobs (1-minute load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end): compare the two methods, not the absolute seconds. Per-run times: "
        "`threshold_cv.csv`.",
    ]
    write_results(RESULTS, "threshold_cv", lines=lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
