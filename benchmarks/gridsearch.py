"""GridSearchCV wall clock with the fit cache: 8 thresholds x 3 folds vs 1 threshold x 3 folds.

Real packaged encoder, 600 real tweets (negative vs positive), 1 epoch, ``memory=`` a fresh
folder per search, ``refit=False``. Counts fine-tunes from skearly's log. Each search runs with
the default scoring (the estimator's ``score``: with ``memory=``, one full-depth pass per
validation fold, memoised, every candidate's exit rule replayed on it) and with
``scoring="accuracy"`` (scikit-learn's scorer calls ``predict``: one early-exit pass per
candidate and fold, what ``score`` did before the memo). Run: ``python benchmarks/gridsearch.py``
(about 5 minutes on 2 CPU cores).
"""

import argparse
import tempfile
import time
from pathlib import Path

from _common import command, count_fine_tunes, header, write_results
from sklearn.model_selection import GridSearchCV

from skearly import EarlyExitTextClassifier
from skearly.datasets import load_tweet_sentiment
from skearly.inference import RECENT_HEAD_PROBA
from skearly.training import RECENT_FITS

argparse.ArgumentParser(description=__doc__).parse_args()
X, _, y, _ = load_tweet_sentiment(classes=("negative", "positive"), n_train=600, random_state=0)
GRID = [0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0]
fits = count_fine_tunes()
seconds, lines = {}, []
runs = [
    ("1 threshold, predict per candidate", [0.9], "accuracy"),
    ("8 thresholds, predict per candidate", GRID, "accuracy"),
    ("1 threshold, memoised score", [0.9], None),
    ("8 thresholds, memoised score", GRID, None),
]
scores = {}
for label, grid, scoring in runs:
    fits.count = 0
    RECENT_FITS.clear()
    RECENT_HEAD_PROBA.clear()
    clf = EarlyExitTextClassifier(epochs=1, random_state=0, memory=tempfile.mkdtemp())
    t = time.perf_counter()
    search = GridSearchCV(clf, {"threshold": grid}, cv=3, refit=False, scoring=scoring).fit(X, y)
    scores[label] = search.cv_results_["mean_test_score"]
    seconds[label] = time.perf_counter() - t
    lines.append(f"- {label} x 3 folds: {seconds[label]:.1f}s, fine-tunes {fits.count}, best {search.best_params_}")
    print(lines[-1], flush=True)
cheapest_one = min(seconds["1 threshold, predict per candidate"], seconds["1 threshold, memoised score"])
lines += [
    f"- ratio 8 thresholds (memoised score) / the cheaper 1-threshold search: "
    f"**{seconds['8 thresholds, memoised score'] / cheapest_one:.2f}**",
    "- ratio 8 / 1 thresholds, both memoised: "
    f"{seconds['8 thresholds, memoised score'] / seconds['1 threshold, memoised score']:.2f}",
    f"- ratio 8 / 1 thresholds, predict per candidate (as before the memo): "
    f"{seconds['8 thresholds, predict per candidate'] / seconds['1 threshold, predict per candidate']:.2f}",
    "- mean test scores equal with and without the memo: "
    f"{bool((scores['8 thresholds, memoised score'] == scores['8 thresholds, predict per candidate']).all())}",
]
print(lines[-1])
title = "GridSearchCV over thresholds with memory=: cost of 8 candidates vs 1"
lines = header(title, command(__file__)) + ["600 binary tweets, 1 epoch, cv=3, refit=False, CPU.", ""] + lines
write_results(Path(__file__).parent / "results", "gridsearch", lines=lines)
