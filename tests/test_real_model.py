"""The real packaged encoder (all-MiniLM-L6-v2) on real packaged tweets: the product working for real."""

import time

import numpy as np
import pytest

from skearly import EarlyExitTextClassifier
from skearly.datasets import load_tweet_sentiment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_fit():
    X_train, X_test, y_train, y_test = load_tweet_sentiment(
        classes=("negative", "positive"), n_train=1200, n_test=600, random_state=0
    )
    clf = EarlyExitTextClassifier(epochs=1, random_state=0).fit(X_train, y_train)
    return clf, X_test, y_test


def _interleaved_medians(clf, X, thresholds, repeats=5):
    """Median predict seconds per threshold, runs interleaved so load changes hit all thresholds alike."""
    times = {t: [] for t in thresholds}
    for _ in range(repeats):
        for t in thresholds:
            clf.set_params(threshold=t)
            start = time.perf_counter()
            clf.predict(X)
            times[t].append(time.perf_counter() - start)
    return {t: float(np.median(v)) for t, v in times.items()}


def test_real_encoder_learns_and_exits_early(real_fit):
    clf, X_test, y_test = real_fit
    majority = max(np.mean(y_test == c) for c in np.unique(y_test))
    assert clf.n_layers_ == 6
    full = clf.set_params(threshold=1.0).score(X_test, y_test)
    assert full > majority + 0.08, (full, majority)
    assert clf.exit_layers_.mean() == 6
    early = clf.set_params(threshold=0.8).score(X_test, y_test)
    mean_layer = clf.exit_layers_.mean()
    assert mean_layer < 5.0
    assert early > full - 0.06


def test_lower_threshold_is_faster_in_wall_clock(real_fit):
    clf, X_test, _ = real_fit
    clf.set_params(threshold=1.0).predict(X_test[:64])  # warm-up
    seconds = _interleaved_medians(clf, X_test, [1.0, 0.7])
    clf.set_params(threshold=0.7).predict(X_test)
    layer_ratio = 6 / clf.exit_layers_.mean()
    assert layer_ratio > 1.3
    # a ratio measured in one run; the bound leaves room for noise on a shared 2-core machine
    assert seconds[1.0] / seconds[0.7] > 1 + 0.25 * (layer_ratio - 1), (seconds, layer_ratio)
