"""``benchmarks/scheduler_fill.py`` counts what it says: checked with the tiny fitted model."""

import copy
import sys
from pathlib import Path

import numpy as np
from conftest import make_texts

BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")
sys.path.insert(0, BENCHMARKS)
try:
    import scheduler_fill
finally:
    sys.path.remove(BENCHMARKS)


def test_measure_counts_calls_fill_padding_and_flush(fitted):
    clf = copy.deepcopy(fitted)
    texts, _ = make_texts(600, seed=4)
    rng = np.random.RandomState(1)
    X = [" ".join([t] * int(rng.randint(1, 6))) for t in texts]
    embedded = scheduler_fill.ExitPass.embedded
    rows = scheduler_fill.measure(clf, X, 32, 0.99, [0.0, float("inf")], 8)
    shrinking, strict, free = rows
    assert [r["scheduler"] for r in rows] == ["shrinking", "refilling", "refilling"]
    assert shrinking["flush_share"] == 0.0  # shrinking runs each input batch to the end before the next
    assert shrinking["padded_tokens_vs_shrinking"] == 1.0
    assert strict["padded_tokens_vs_shrinking"] <= 1.0 <= free["padded_tokens_vs_shrinking"]
    assert shrinking["fill"] < strict["fill"] <= free["fill"] <= 1.0
    assert free["calls"] <= strict["calls"] < shrinking["calls"]
    assert 0.0 < strict["flush_share"] < 1.0
    assert all(r["exit_layers_unlike_shrinking"] == 0 for r in rows)
    assert 1.0 < shrinking["mean_exit_layer"] < clf.n_layers_
    assert clf.network_.run_layer.__func__ is type(clf.network_).run_layer  # the call log put things back
    assert scheduler_fill.ExitPass.embedded is embedded
