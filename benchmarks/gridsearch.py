"""GridSearchCV wall clock with the fit cache: 8 thresholds x 3 folds vs 1 threshold x 3 folds.

Real packaged encoder, 600 real tweets (negative vs positive), 1 epoch, ``memory=`` a fresh
folder per search, ``refit=False``. Counts fine-tunes from skearly's log. Run:
``python benchmarks/gridsearch.py`` (about 2 minutes on 2 CPU cores).
"""

import argparse
import logging
import tempfile
import time

from sklearn.model_selection import GridSearchCV

from skearly import EarlyExitTextClassifier
from skearly.datasets import load_tweet_sentiment

argparse.ArgumentParser(description=__doc__).parse_args()
X, _, y, _ = load_tweet_sentiment(classes=("negative", "positive"), n_train=600, random_state=0)
fits = []


class FineTuneCounter(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("fitted in"):
            fits.append(1)


logging.getLogger("skearly").addHandler(FineTuneCounter())
logging.getLogger("skearly").setLevel(logging.INFO)
for grid in ([0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0], [0.9]):
    fits.clear()
    clf = EarlyExitTextClassifier(epochs=1, random_state=0, memory=tempfile.mkdtemp())
    t = time.perf_counter()
    search = GridSearchCV(clf, {"threshold": grid}, cv=3, refit=False).fit(X, y)
    print(
        f"{len(grid)} thresholds x 3 folds: {time.perf_counter() - t:.1f}s, "
        f"fine-tunes {len(fits)}, best {search.best_params_}"
    )
