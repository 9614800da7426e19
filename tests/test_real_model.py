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


def _median_seconds(clf, X, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        clf.predict(X)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


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
    full = _median_seconds(clf.set_params(threshold=1.0), X_test)
    fast = _median_seconds(clf.set_params(threshold=0.6), X_test)
    layer_ratio = 6 / clf.exit_layers_.mean()
    assert layer_ratio > 1.3
    # ratio measured in one run; the bound leaves room for noise on a shared 2-core machine
    assert full / fast > 1 + 0.5 * (layer_ratio - 1), (full, fast, layer_ratio)
