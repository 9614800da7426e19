"""score() with memory=: one full-depth pass per validation set, every exit rule replayed on it."""

import numpy as np
import pytest
import torch
from conftest import tiny_classifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV

import skearly.training._fit_cache as fit_cache
from skearly import inference
from skearly.inference._score_memo import RECENT_HEAD_PROBA, head_proba_key


@pytest.fixture(autouse=True)
def empty_memos():
    fit_cache.RECENT_FITS.clear()
    RECENT_HEAD_PROBA.clear()
    yield
    fit_cache.RECENT_FITS.clear()
    RECENT_HEAD_PROBA.clear()


@pytest.fixture
def full_passes(monkeypatch):
    """Count the full-depth passes (InferenceEngine.head_proba calls)."""
    calls = []
    original = inference.InferenceEngine.head_proba

    def counting(self, first, second):
        calls.append(len(first))
        return original(self, first, second)

    monkeypatch.setattr(inference.InferenceEngine, "head_proba", counting)
    return calls


def _clf(encoder, memory, **params):
    return tiny_classifier(encoder, memory=memory, **{"epochs": 2, **params})


@pytest.mark.parametrize("criterion", ["max_proba", "entropy", "patience"])
def test_score_equals_predict_at_every_threshold(tiny_encoder, toy_data, tmp_path, full_passes, criterion):
    X_train, y_train, X_test, y_test = toy_data
    clf = _clf(tiny_encoder, str(tmp_path), exit_criterion=criterion).fit(X_train, y_train)
    reference = _clf(tiny_encoder, None, exit_criterion=criterion).fit(X_train, y_train)  # no memory: predict
    exits_seen = set()
    for threshold in [1.0, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5]:
        clf.set_params(threshold=threshold)
        reference.set_params(threshold=threshold)
        expected = accuracy_score(y_test, reference.predict(X_test))
        assert clf.score(X_test, y_test) == expected
        np.testing.assert_array_equal(clf.exit_layers_, reference.exit_layers_)
        assert reference.score(X_test, y_test) == expected
        exits_seen.update(clf.exit_layers_.tolist())
    assert len(full_passes) == 1  # one pass served all seven thresholds (the reference never used it)
    assert len(exits_seen) > 1  # rows really left early at some threshold


def test_grid_search_runs_each_fold_through_the_encoder_once(tiny_encoder, toy_data, tmp_path, full_passes):
    X_train, y_train, _, _ = toy_data
    grid = {"threshold": [1.0, 0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.55]}
    search = GridSearchCV(_clf(tiny_encoder, str(tmp_path)), grid, cv=3, refit=False).fit(X_train, y_train)
    assert len(full_passes) == 3  # not 8 x 3 predicts
    plain = GridSearchCV(_clf(tiny_encoder, None), grid, cv=3, refit=False).fit(X_train, y_train)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"])


def test_settings_that_change_the_probabilities_are_not_shared(tiny_encoder, toy_data, tmp_path, full_passes):
    X_train, y_train, X_test, y_test = toy_data
    clf = _clf(tiny_encoder, str(tmp_path)).fit(X_train, y_train)
    clf.score(X_test, y_test)
    clf.set_params(threshold=0.7, predict_batch_size=7).score(X_test, y_test)
    assert len(full_passes) == 1
    clf.set_params(max_length=8).score(X_test, y_test)  # another truncation: other probabilities
    assert len(full_passes) == 2
    clf.score(X_test[:50], y_test[:50])  # other inputs
    assert len(full_passes) == 3


def test_weights_changed_after_fit_send_score_back_to_predict(tiny_encoder, toy_data, tmp_path, full_passes):
    X_train, y_train, X_test, y_test = toy_data
    clf = _clf(tiny_encoder, str(tmp_path), threshold=0.8).fit(X_train, y_train)
    clf.score(X_test, y_test)
    with torch.no_grad():
        for parameter in clf.network_.heads.parameters():
            parameter.mul_(-1.0)
    assert clf.score(X_test, y_test) == accuracy_score(y_test, clf.predict(X_test))
    assert len(full_passes) == 1  # the memoised pass was not reused


def test_without_memory_score_is_predict(tiny_encoder, toy_data, full_passes):
    X_train, y_train, X_test, y_test = toy_data
    clf = _clf(tiny_encoder, None, threshold=0.8).fit(X_train, y_train)
    assert clf.score(X_test, y_test) == accuracy_score(y_test, clf.predict(X_test))
    assert not full_passes


def test_key_depends_on_inputs_pairs_and_settings():
    base = head_proba_key("k", ["a", "b"], None, ("torch", "cpu", 128, True))
    assert base == head_proba_key("k", ["a", "b"], None, ("torch", "cpu", 128, True))
    assert base != head_proba_key("other", ["a", "b"], None, ("torch", "cpu", 128, True))
    assert base != head_proba_key("k", ["a", "c"], None, ("torch", "cpu", 128, True))
    assert base != head_proba_key("k", ["a", "b"], ["x", "y"], ("torch", "cpu", 128, True))
    assert base != head_proba_key("k", ["a", "b"], None, ("int8", "cpu", 128, True))
