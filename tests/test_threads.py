"""One fitted estimator shared by several threads: same answers as sequential calls, no races."""

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from skearly._utils.batching import tokenize

N_THREADS = 4


@pytest.fixture(scope="module")
def model(fitted):
    return copy.deepcopy(fitted).set_params(threshold=0.7)


@pytest.fixture(scope="module")
def chunks(toy_data):
    _, _, X_test, _ = toy_data
    # different sizes and contents, so that a result landing in the wrong call would show
    return [X_test[i::N_THREADS][: 10 + 7 * i] for i in range(N_THREADS)] * 3


def run_concurrently(function, items):
    with ThreadPoolExecutor(max_workers=N_THREADS) as pool:
        return list(pool.map(function, items))


def test_concurrent_predict_matches_sequential(model, chunks):
    expected = [model.predict(chunk) for chunk in chunks]
    expected_proba = [model.predict_proba(chunk) for chunk in chunks]
    assert len({len(e) for e in expected}) == N_THREADS
    got = run_concurrently(model.predict, chunks)
    got_proba = run_concurrently(model.predict_proba, chunks)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_array_equal(g, e)
    for e, g in zip(expected_proba, got_proba, strict=True):
        np.testing.assert_array_equal(g, e)


def test_predict_with_exits_is_race_free(model, chunks):
    expected = [model.predict_with_exits(chunk) for chunk in chunks]
    assert any(len(np.unique(layers)) > 1 for _, layers in expected), "rows should exit at different layers"
    model.exit_layers_ = "untouched"
    got = run_concurrently(model.predict_with_exits, chunks)
    for (y_e, layers_e), (y_g, layers_g) in zip(expected, got, strict=True):
        np.testing.assert_array_equal(y_g, y_e)
        np.testing.assert_array_equal(layers_g, layers_e)
    assert model.exit_layers_ == "untouched"  # predict_with_exits never writes the shared attribute


def test_exit_layers_attribute_holds_one_whole_call(model, chunks):
    """Under concurrency ``exit_layers_`` is the complete result of one of the calls (the last to finish)."""
    per_call = [model.predict_with_exits(chunk)[1] for chunk in chunks]
    run_concurrently(model.predict, chunks)
    assert any(np.array_equal(model.exit_layers_, layers) for layers in per_call)


def test_estimators_sharing_a_tokenizer_with_different_max_length(model):
    """The tokenizer's truncation setting is shared mutable state: tokenization is serialised by a lock."""
    short, long = copy.copy(model).set_params(max_length=8), copy.copy(model).set_params(max_length=96)
    assert short.tokenizer_ is long.tokenizer_
    texts = [" ".join(["good", "bad", "movie", str(i)] * 40) for i in range(60)]
    expected = {8: short.predict_with_exits(texts), 96: long.predict_with_exits(texts)}
    got = run_concurrently(lambda i: (i, (short if i % 2 else long).predict_with_exits(texts)), range(16))
    for i, (y_pred, layers) in got:
        y_e, layers_e = expected[8 if i % 2 else 96]
        np.testing.assert_array_equal(y_pred, y_e)
        np.testing.assert_array_equal(layers, layers_e)


def test_tokenize_is_thread_safe(model):
    texts = [("word " * 300) + str(i) for i in range(200)]
    expected = {n: tokenize(model.tokenizer_, texts, None, n).input_ids for n in (8, 64)}
    results = run_concurrently(lambda n: (n, tokenize(model.tokenizer_, texts, None, n).input_ids), [8, 64] * 12)
    for n, ids in results:
        assert ids == expected[n]
