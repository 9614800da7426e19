"""GridSearchCV wall clock with the fit cache: 8 thresholds x 3 folds vs 1 threshold x 3 folds.

Real packaged encoder, 600 real tweets (negative vs positive), 1 epoch, ``memory=`` a fresh
folder per search, ``refit=False``. Counts fine-tunes from skearly's log. The 8-threshold search runs
twice: with the fit cache's in-process layer (the default: candidates of a fold share the fitted
network in memory) and without it (``RECENT_FITS.max_entries = 0``: every candidate reads the
network back from disk, as before). Run: ``python benchmarks/gridsearch.py`` (about 3 minutes on
2 CPU cores).
"""

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from sklearn.model_selection import GridSearchCV  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from tradeoff import environment  # noqa: E402

import skearly._fit_cache as fit_cache  # noqa: E402
from skearly import EarlyExitTextClassifier  # noqa: E402
from skearly.datasets import load_tweet_sentiment  # noqa: E402

argparse.ArgumentParser(description=__doc__).parse_args()
X, _, y, _ = load_tweet_sentiment(classes=("negative", "positive"), n_train=600, random_state=0)
fits = []
GRID = [0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0]


class FineTuneCounter(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("fitted in"):
            fits.append(1)


logging.getLogger("skearly").addHandler(FineTuneCounter())
logging.getLogger("skearly").setLevel(logging.INFO)
seconds, lines = {}, []
runs = [("1 threshold", [0.9], 8), ("8 thresholds", GRID, 8), ("8 thresholds, no in-process layer", GRID, 0)]
for label, grid, entries in runs:
    fits.clear()
    fit_cache.RECENT_FITS.clear()
    fit_cache.RECENT_FITS.max_entries = entries
    clf = EarlyExitTextClassifier(epochs=1, random_state=0, memory=tempfile.mkdtemp())
    t = time.perf_counter()
    search = GridSearchCV(clf, {"threshold": grid}, cv=3, refit=False).fit(X, y)
    seconds[label] = time.perf_counter() - t
    lines.append(f"- {label} x 3 folds: {seconds[label]:.1f}s, fine-tunes {len(fits)}, best {search.best_params_}")
    print(lines[-1], flush=True)
one = seconds["1 threshold"]
lines.append(
    f"- ratio 8 / 1 thresholds: **{seconds['8 thresholds'] / one:.2f}** with the in-process layer, "
    f"{seconds['8 thresholds, no in-process layer'] / one:.2f} without"
)
print(lines[-1])
header = [
    "# GridSearchCV over thresholds with memory=: cost of 8 candidates vs 1",
    "",
    "Command: `python benchmarks/gridsearch.py` (600 binary tweets, 1 epoch, cv=3, refit=False, CPU)",
    "",
    f"Environment: {environment()}",
    "",
]
(Path(__file__).parent / "results" / "gridsearch.md").write_text("\n".join(header + lines) + "\n")
