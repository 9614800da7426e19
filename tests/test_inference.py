"""The early-exit engine: same answers as a full pass, rows really leave the batch, order restored."""

import copy

import numpy as np
import pytest
import torch

from skearly.exit_criteria import MaxProbability, Patience
from skearly.inference import early_exit_proba, simulate_exits
from skearly.training import all_exit_logits


def _full_pass(clf, X):
    """Calibrated probabilities of every head for every row (no early exit)."""
    logits = all_exit_logits(clf.network_, clf._encode(X), 64, torch.device("cpu"))
    scaled = torch.as_tensor(logits) / torch.as_tensor(clf.temperatures_, dtype=torch.float32)[:, None, None]
    return torch.softmax(scaled, dim=2).numpy()


@pytest.mark.parametrize("criterion", [MaxProbability(), Patience(2)])
@pytest.mark.parametrize("threshold", [0.55, 0.8, 0.95])
def test_engine_matches_full_pass(fitted, toy_data, criterion, threshold):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted)
    full = _full_pass(clf, X_test)
    expected_head = simulate_exits(criterion, full, threshold)
    proba, layers = early_exit_proba(
        clf.network_,
        clf._encode(X_test),
        clf.temperatures_,
        criterion,
        threshold,
        batch_size=16,
        device=torch.device("cpu"),
    )
    np.testing.assert_array_equal(layers, np.asarray(clf.head_layers_)[expected_head])
    np.testing.assert_allclose(proba, full[expected_head, np.arange(len(X_test))], atol=1e-5)


def test_rows_leave_the_batch(fitted, toy_data, monkeypatch):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(threshold=0.7, predict_batch_size=len(X_test))
    network = clf.network_
    rows_per_layer = {}
    original = type(network).run_layer

    def counting(self, index, hidden, bias):
        rows_per_layer[index] = rows_per_layer.get(index, 0) + hidden.shape[0]
        return original(self, index, hidden, bias)

    monkeypatch.setattr(type(network), "run_layer", counting)
    clf.predict(X_test)
    layers = clf.exit_layers_
    for index in range(clf.n_layers_):
        # layer index+1 only computes the rows that had not exited before it
        assert rows_per_layer[index] == int((layers > index).sum())
    assert rows_per_layer[clf.n_layers_ - 1] < len(X_test)


def test_order_is_restored(fitted, toy_data):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(threshold=0.8, predict_batch_size=7)
    proba = clf.predict_proba(X_test)
    layers = clf.exit_layers_.copy()
    perm = np.random.RandomState(0).permutation(len(X_test))
    proba_perm = clf.predict_proba([X_test[i] for i in perm])
    np.testing.assert_allclose(proba_perm, proba[perm], atol=1e-5)
    np.testing.assert_array_equal(clf.exit_layers_, layers[perm])


def test_batch_size_does_not_change_answers(fitted, toy_data):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(threshold=0.8)
    a = clf.set_params(predict_batch_size=1).predict_proba(X_test[:30])
    b = clf.set_params(predict_batch_size=64).predict_proba(X_test[:30])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_simulate_exits_hand_made():
    # 3 heads, 3 rows, 2 classes
    proba = np.array(
        [
            [[0.95, 0.05], [0.6, 0.4], [0.5, 0.5]],
            [[0.9, 0.1], [0.92, 0.08], [0.3, 0.7]],
            [[0.9, 0.1], [0.1, 0.9], [0.3, 0.7]],
        ]
    )
    np.testing.assert_array_equal(simulate_exits(MaxProbability(), proba, 0.9), [0, 1, 2])
    np.testing.assert_array_equal(simulate_exits(MaxProbability(), proba, 1.0), [2, 2, 2])
    np.testing.assert_array_equal(simulate_exits(Patience(2), proba, 0.5), [1, 1, 2])
