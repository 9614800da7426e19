"""EarlyExitThresholdCV: the same choice as GridSearchCV(memory=...) on the same folds, constraints, ties, errors."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skearly.model_selection import EarlyExitThresholdCV, _pick

GRID = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0]


@pytest.fixture(scope="module")
def search_and_grid(tiny_encoder, toy_data, tmp_path_factory):
    X, y, _, _ = toy_data
    folds = list(StratifiedKFold(3).split(np.zeros(len(y)), y))
    clf = tiny_classifier(tiny_encoder, epochs=1, memory=str(tmp_path_factory.mktemp("fit-cache")))
    grid = GridSearchCV(clf, {"threshold": GRID}, cv=folds).fit(X, y)
    search = EarlyExitThresholdCV(tiny_classifier(tiny_encoder, epochs=1), thresholds=GRID, cv=folds).fit(X, y)
    return search, grid


def test_same_choice_and_scores_as_gridsearchcv(search_and_grid, toy_data):
    search, grid = search_and_grid
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], grid.cv_results_["mean_test_score"], rtol=1e-12)
    for k in range(3):
        np.testing.assert_allclose(
            search.cv_results_[f"split{k}_test_score"], grid.cv_results_[f"split{k}_test_score"], rtol=1e-12
        )
    np.testing.assert_array_equal(search.cv_results_["rank_test_score"], grid.cv_results_["rank_test_score"])
    assert search.best_threshold_ == grid.best_params_["threshold"]
    assert search.best_index_ == grid.best_index_
    assert search.best_score_ == pytest.approx(grid.best_score_)
    assert search.constraint_satisfied_
    assert search.best_estimator_.threshold == search.best_threshold_
    _, _, X_test, y_test = toy_data
    np.testing.assert_array_equal(search.predict(X_test), grid.predict(X_test))
    np.testing.assert_allclose(search.predict_proba(X_test), grid.predict_proba(X_test), rtol=1e-6)
    assert search.score(X_test, y_test) == grid.score(X_test, y_test)
    labels, layers = search.predict_with_exits(X_test)
    np.testing.assert_array_equal(labels, search.predict(X_test))
    assert layers.shape == (len(X_test),)
    np.testing.assert_array_equal(search.classes_, grid.classes_)


def test_cv_results_are_a_table_with_speedups(search_and_grid):
    search, _ = search_and_grid
    table = pd.DataFrame(search.cv_results_)
    assert list(table["param_threshold"]) == GRID
    assert search.n_splits_ == 3
    speedup = table["mean_speedup"].to_numpy()
    assert speedup[-1] == pytest.approx(1.0)  # threshold 1.0: full depth
    assert np.all(np.diff(speedup) <= 1e-12)  # higher threshold, never faster (max_proba)
    layers = table[[f"split{k}_mean_exit_layer" for k in range(3)]].to_numpy().mean(axis=1)
    np.testing.assert_allclose(table["mean_exit_layer"], layers)


def test_pick_tie_rules():
    score = np.array([0.8, 0.9, 0.9, 0.9, 0.7])
    speed = np.array([3.0, 2.0, 2.5, 2.5, 4.0])
    everything = np.ones(5, bool)
    assert _pick(score, speed, everything) == (2, True)  # best score, then fastest, then first given
    assert _pick(score, speed, speed >= 3.0) == (0, True)  # best score among the fast enough
    assert _pick(speed, score, score >= 0.85) == (2, True)  # fastest among the good enough, then best score
    assert _pick(score, speed, speed >= 5.0) == (4, False)  # none allowed: the fastest
    assert _pick(speed, score, score >= 0.95) == (2, False)  # none allowed: the best score, then fastest


def test_unreachable_constraint_warns_and_takes_the_closest(tiny_encoder, toy_data):
    X, y, _, _ = toy_data
    search = EarlyExitThresholdCV(
        tiny_classifier(tiny_encoder, epochs=1), thresholds=[0.9, 1.0], min_speedup=100.0, cv=2, refit=False
    )
    with pytest.warns(UserWarning, match="No threshold reached min_speedup=100"):
        search.fit(X[:80], y[:80])
    assert not search.constraint_satisfied_
    speedup = search.cv_results_["mean_speedup"]
    assert search.best_index_ == int(np.argmax(speedup))
    with pytest.raises(AttributeError, match="refit=False"):
        search.predict(X[:3])


def test_min_score_takes_the_fastest_good_enough(tiny_encoder, toy_data):
    X, y, _, _ = toy_data
    metric = functools.partial(f1_score, average="macro")
    search = EarlyExitThresholdCV(
        tiny_classifier(tiny_encoder, epochs=1),
        thresholds=[0.6, 0.8, 1.0],
        scoring=metric,
        min_score=0.0,
        cv=2,
        refit=False,
    ).fit(X[:80], y[:80])
    assert search.constraint_satisfied_
    assert search.best_speedup_ == search.cv_results_["mean_speedup"].max()


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(min_speedup=2.0, min_score=0.8), ValueError, "not both"),
        (dict(min_speedup=0.5), ValueError, r"min_speedup must be in \[1"),
        (dict(min_score="high"), TypeError, "min_score must be a real number"),
        (dict(scoring="f1"), ValueError, "scoring must be one of"),
        (dict(thresholds=[0.9, 0.9]), ValueError, "repeated"),
        (dict(thresholds=[]), ValueError, "empty"),
        (dict(thresholds=[1.5]), ValueError, "threshold"),
        (dict(thresholds="0.9"), TypeError, "sequence"),
    ],
)
def test_bad_parameters_are_refused_before_any_fit(tiny_encoder, params, error, match):
    search = EarlyExitThresholdCV(tiny_classifier(tiny_encoder), **params)
    with pytest.raises(error, match=match):
        search.fit(["a", "b", "c", "d"], [0, 1, 0, 1])


def test_estimator_without_exit_curve_is_refused():
    with pytest.raises(TypeError, match="exit_curve"):
        EarlyExitThresholdCV(LogisticRegression()).fit(["a", "b"], [0, 1])
