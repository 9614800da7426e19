"""The inference engine: same answers as a full pass, for every scheduler, criterion, batch size and chunking."""

import copy
import threading

import numpy as np
import pytest
import torch
from conftest import make_texts

import skearly.inference._engine as engine_module
from skearly.exit_criteria import Entropy, MaxProbability, Patience
from skearly.inference._engine import InferenceEngine, simulate_exits
from skearly.inference._schedulers import RefillingScheduler, ShrinkingScheduler

#: Every scheduler setting: refilling that pads no row wider than shrinking, a little wider, and as wide as it likes.
SCHEDULERS = [
    ShrinkingScheduler(),
    RefillingScheduler(),
    RefillingScheduler(padding_tolerance=0.25),
    RefillingScheduler(padding_tolerance=float("inf")),
]


def _id(scheduler):
    return repr(scheduler).replace("Scheduler", "").lower()


def _engine(clf, scheduler, batch_size=16, **kwargs):
    return InferenceEngine(
        runner=clf.network_,
        tokenizer=clf.tokenizer_,
        temperatures=clf.temperatures_,
        max_length=clf.max_length,
        batch_size=batch_size,
        device=torch.device("cpu"),
        scheduler=scheduler,
        **kwargs,
    )


def _mixed_lengths(n, seed=3):
    """Texts of very different lengths, so that batches are padded and padding gets trimmed."""
    texts, _ = make_texts(n, seed=seed)
    rng = np.random.RandomState(seed)
    return [" ".join([t] * int(rng.randint(1, 6))) for t in texts]


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=_id)
@pytest.mark.parametrize("criterion", [MaxProbability(), Entropy(), Patience(2)], ids=repr)
@pytest.mark.parametrize("threshold", [0.55, 0.8, 0.95, 1.0])
def test_engine_matches_a_full_pass(fitted, toy_data, scheduler, criterion, threshold):
    _, _, X_test, _ = toy_data
    X = list(X_test) + _mixed_lengths(40)
    engine = _engine(fitted, scheduler)
    full = engine.head_proba(X, None)
    expected_head = simulate_exits(criterion, full, threshold)
    proba, layers = engine.predict(X, None, criterion, threshold)
    np.testing.assert_array_equal(layers, np.asarray(fitted.head_layers_)[expected_head])
    np.testing.assert_allclose(proba, full[expected_head, np.arange(len(X))], atol=1e-5)


@pytest.mark.parametrize("criterion", [MaxProbability(), Entropy(), Patience(2)], ids=repr)
@pytest.mark.parametrize("threshold", [0.6, 0.75, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("batch_size", [1, 5, 16, 64])
@pytest.mark.parametrize("tolerance", [0.0, 0.25])
def test_refilling_equals_shrinking_row_for_row(fitted, toy_data, criterion, threshold, batch_size, tolerance):
    _, _, X_test, _ = toy_data
    X = list(X_test) + _mixed_lengths(50)
    shrinking = _engine(fitted, ShrinkingScheduler(), batch_size).predict(X, None, criterion, threshold)
    refilling = _engine(fitted, RefillingScheduler(tolerance), batch_size).predict(X, None, criterion, threshold)
    np.testing.assert_array_equal(refilling[1], shrinking[1])
    np.testing.assert_array_equal(refilling[0].argmax(axis=1), shrinking[0].argmax(axis=1))
    np.testing.assert_allclose(refilling[0], shrinking[0], atol=1e-5)


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=_id)
def test_widths_rounded_up_give_the_same_answers(fitted, toy_data, scheduler):
    """The CUDA setting (padded widths rounded up to a multiple of 8), checked on the CPU."""
    _, _, X_test, _ = toy_data
    X = list(X_test) + _mixed_lengths(40)
    for threshold in (0.7, 0.9, 1.0):
        exact = _engine(fitted, scheduler).predict(X, None, MaxProbability(), threshold)
        rounded = _engine(fitted, scheduler, length_multiple=8).predict(X, None, MaxProbability(), threshold)
        np.testing.assert_array_equal(rounded[1], exact[1])
        np.testing.assert_allclose(rounded[0], exact[0], atol=1e-5)


def test_refilling_equals_shrinking_on_pairs(tiny_encoder):
    from conftest import tiny_classifier

    first, y = make_texts(120, seed=7)
    second, _ = make_texts(120, seed=8)
    clf = tiny_classifier(tiny_encoder, epochs=2).fit(list(zip(first, second, strict=True)), y)
    for threshold in (0.6, 0.8, 0.95):
        a = _engine(clf, ShrinkingScheduler(), 8).predict(first, second, MaxProbability(), threshold)
        b = _engine(clf, RefillingScheduler(), 8).predict(first, second, MaxProbability(), threshold)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_allclose(a[0], b[0], atol=1e-5)


def _count_layer_calls(monkeypatch, network):
    calls = []
    original = type(network).run_layer

    def counting(self, index, hidden, context):
        calls.append((index, hidden.shape[0]))
        return original(self, index, hidden, context)

    monkeypatch.setattr(type(network), "run_layer", counting)
    return calls


def test_shrinking_rows_leave_the_batch(fitted, toy_data, monkeypatch):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted)
    calls = _count_layer_calls(monkeypatch, clf.network_)
    _, layers = _engine(clf, ShrinkingScheduler(), batch_size=len(X_test)).predict(X_test, None, MaxProbability(), 0.7)
    rows_per_layer = np.bincount([i for i, _ in calls], weights=[n for _, n in calls], minlength=clf.n_layers_)
    for index in range(clf.n_layers_):
        # layer index+1 only computes the rows that had not exited before it
        assert rows_per_layer[index] == int((layers > index).sum())
    assert rows_per_layer[-1] < len(X_test)


def test_refilling_runs_full_batches_and_each_row_once_per_layer(fitted, toy_data, monkeypatch):
    _, _, X_test, _ = toy_data
    X = list(X_test) * 3
    clf = copy.deepcopy(fitted)
    calls = _count_layer_calls(monkeypatch, clf.network_)
    batch_size = 16
    _, layers = _engine(clf, RefillingScheduler(), batch_size).predict(X, None, MaxProbability(), 0.7)
    rows_per_layer = np.bincount([i for i, _ in calls], weights=[n for _, n in calls], minlength=clf.n_layers_)
    for index in range(clf.n_layers_):
        assert rows_per_layer[index] == int((layers > index).sum())
    sizes = np.array([n for _, n in calls])
    assert sizes.max() <= batch_size
    # only the flush at the end runs partial batches, and most row-layers run in full ones
    first_partial = int(np.argmax(sizes < batch_size))
    assert (sizes[:first_partial] == batch_size).all() and first_partial > 0
    assert sizes[sizes == batch_size].sum() >= 0.75 * sizes.sum()
    assert len(np.unique(layers)) > 1  # rows did leave mid-way


def test_chunking_does_not_change_answers(fitted, toy_data):
    _, _, X_test, _ = toy_data
    for scheduler in SCHEDULERS:
        whole = _engine(fitted, scheduler).predict(X_test, None, MaxProbability(), 0.8)
        chunked = _engine(fitted, scheduler, chunk_size=7).predict(X_test, None, MaxProbability(), 0.8)
        np.testing.assert_allclose(chunked[0], whole[0], atol=1e-5)
        np.testing.assert_array_equal(chunked[1], whole[1])
        heads = _engine(fitted, scheduler, chunk_size=7).head_proba(X_test, None)
        np.testing.assert_allclose(heads, _engine(fitted, scheduler).head_proba(X_test, None), atol=1e-5)


@pytest.mark.parametrize("scheduler", ["shrinking", "refilling"])
def test_order_is_restored(fitted, toy_data, scheduler):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(threshold=0.8, predict_batch_size=7, scheduler=scheduler)
    proba = clf.predict_proba(X_test)
    layers = clf.exit_layers_.copy()
    perm = np.random.RandomState(0).permutation(len(X_test))
    proba_perm = clf.predict_proba([X_test[i] for i in perm])
    np.testing.assert_allclose(proba_perm, proba[perm], atol=1e-5)
    np.testing.assert_array_equal(clf.exit_layers_, layers[perm])


@pytest.mark.parametrize("scheduler", ["shrinking", "refilling"])
def test_batch_size_does_not_change_answers(fitted, toy_data, scheduler):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(threshold=0.8, scheduler=scheduler)
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


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=_id)
def test_tokenizing_ahead_on_a_thread_changes_no_answer(fitted, scheduler, monkeypatch):
    X = _mixed_lengths(50)
    want = _engine(fitted, scheduler).predict(X, None, MaxProbability(), 0.8)
    threads = []
    tokenize = engine_module.tokenize

    def watched(*args):
        threads.append(threading.current_thread().name)
        return tokenize(*args)

    monkeypatch.setattr(engine_module, "tokenize", watched)
    got = _engine(fitted, scheduler, chunk_size=7, tokenize_ahead=True).predict(X, None, MaxProbability(), 0.8)
    np.testing.assert_allclose(got[0], want[0], atol=1e-6)
    np.testing.assert_array_equal(got[1], want[1])
    assert len(threads) == 8 and all(name.startswith("skearly-tokenize") for name in threads)
    threads.clear()
    _engine(fitted, scheduler, chunk_size=7).predict(X, None, MaxProbability(), 0.8)  # on a CPU: no thread
    assert threads == ["MainThread"] * 8
