"""The GPU proxy on CPU: would-be host syncs per layer call, and widths that stay on the bucket grid.

:class:`~skearly._utils.host_syncs.HostSyncCounter` charges every torch call to a phase:
``"layer"`` (an encoder layer), ``"mask"`` (building a group's layer context) or the
engine's own bookkeeping. On a GPU each would-be sync stops the host from queueing work,
so the engine must keep them rare (at most one per layer call: the exit decisions).
"""

import copy

import numpy as np
import pytest
import torch
from conftest import make_texts

from skearly._utils.host_syncs import HostSyncCounter, would_sync
from skearly.exit_criteria import MaxProbability, Patience
from skearly.inference._engine import InferenceEngine
from skearly.inference._schedulers import RefillingScheduler, ShrinkingScheduler

N_ROWS = 400


def test_counter_counts_what_would_block_the_host():
    t = torch.arange(6.0)
    counter = HostSyncCounter()
    with counter:
        with counter.phase("sync"):
            t.sum().item()
            t.cpu()
            t.tolist()
            bool((t > 2).any())
            t[t > 2]  # boolean-mask indexing
            t[np.array([0, 1])]  # host index copied to the device
            torch.as_tensor(np.arange(3), device=t.device)  # pageable host-to-device copy
            torch.nonzero(t)
        with counter.phase("read in place"):
            (t > 2).numpy()  # a CPU tensor's values read on the host: what .cpu() would have synced
        with counter.phase("copied, then read"):
            (t > 2).cpu().numpy()  # one sync, at the copy
        with counter.phase("async"):
            t.index_select(0, torch.arange(2))
            torch.from_numpy(np.arange(3)).to(t.device, non_blocking=True)
            torch.where(t > 2, t, -t)
            t[:3]
            t.to(torch.float64)
    assert counter.syncs["sync"] == 8
    assert counter.syncs["read in place"] == 1 and counter.syncs["copied, then read"] == 1, counter.where
    assert counter.syncs["async"] == 0
    assert counter.ops["async"] >= 5 and counter.calls["sync"] == 1
    assert would_sync(torch.Tensor.to, (t, "meta"), {})  # across device types
    assert not would_sync(torch.Tensor.to, (t, "meta"), {"non_blocking": True})


def _mixed_lengths(n, seed=3):
    texts, _ = make_texts(n, seed=seed)
    rng = np.random.RandomState(seed)
    return [" ".join([t] * int(rng.randint(1, 8))) for t in texts]


def _instrumented(network, counter, widths):
    """Charge the network's layers to phase "layer", its layer contexts to "mask", and record layer widths."""
    cls = type(network)
    run_layer, layer_context = cls.run_layer, cls.layer_context

    def counted_layer(self, index, hidden, context):
        widths.append((int(hidden.shape[0]), int(hidden.shape[1])))
        with counter.phase("layer"):
            return run_layer(self, index, hidden, context)

    def counted_context(self, hidden, mask):
        with counter.phase("mask"):
            return layer_context(self, hidden, mask)

    return counted_layer, counted_context


def _measure(fitted, monkeypatch, scheduler, threshold, criterion=None, batch_size=64, multiple=8):
    clf = copy.deepcopy(fitted)
    network = clf.network_
    counter, widths = HostSyncCounter(), []
    layer, context = _instrumented(network, counter, widths)
    monkeypatch.setattr(type(network), "run_layer", layer)
    monkeypatch.setattr(type(network), "layer_context", context)
    engine = InferenceEngine(
        network,
        clf.tokenizer_,
        clf.temperatures_,
        clf.max_length,
        batch_size,
        torch.device("cpu"),
        scheduler,
        length_multiple=multiple,
    )
    X = _mixed_lengths(N_ROWS)
    with counter:
        _, layers = engine.predict(X, None, criterion or MaxProbability(), threshold)
    monkeypatch.undo()
    return counter, widths, layers


@pytest.mark.parametrize(
    "scheduler, criterion, threshold",
    [
        (RefillingScheduler(), MaxProbability(), 0.8),
        (RefillingScheduler(), MaxProbability(), 1.0),
        (RefillingScheduler(), Patience(2), 0.8),
        (RefillingScheduler(padding_tolerance=0.25), MaxProbability(), 0.8),
        (ShrinkingScheduler(), MaxProbability(), 0.8),
    ],
    ids=["refilling-0.8", "refilling-full-depth", "refilling-patience", "refilling-tolerant-0.8", "shrinking-0.8"],
)
def test_at_most_one_host_sync_per_layer_call(fitted, monkeypatch, scheduler, criterion, threshold):
    counter, widths, layers = _measure(fitted, monkeypatch, scheduler, threshold, criterion)
    n_calls = counter.calls["layer"]
    assert n_calls == len(widths) > 0
    if threshold < 1:
        assert 1 < layers.mean() < fitted.n_layers_  # rows did exit mid-way, and not all at the first head
    assert counter.syncs["layer"] == 0, counter.where
    assert counter.syncs["mask"] == 0, counter.where
    assert counter.total_syncs() / n_calls <= 1.0, (counter.total_syncs(), n_calls, counter.where)
    if threshold < 1:  # the exit decisions are read on the host: the counter must see those reads
        assert counter.total_syncs() >= 0.5 * n_calls, (counter.total_syncs(), n_calls, counter.where)


@pytest.mark.parametrize(
    "scheduler", [RefillingScheduler(), RefillingScheduler(padding_tolerance=0.25), ShrinkingScheduler()], ids=repr
)
@pytest.mark.parametrize("multiple", [8])
def test_every_layer_call_width_is_a_multiple_of_the_bucket(fitted, monkeypatch, scheduler, multiple):
    _, widths, _ = _measure(fitted, monkeypatch, scheduler, 0.8, multiple=multiple, batch_size=48)
    assert all(width % multiple == 0 for _, width in widths), sorted({w for _, w in widths})
    assert len({w for _, w in widths}) > 1  # rows of several lengths: the test sees trimming at work


def test_the_mask_is_built_once_per_group(fitted, monkeypatch):
    """A group that loses no row keeps its layer context: no mask is built for every layer."""
    counter, widths, _ = _measure(fitted, monkeypatch, ShrinkingScheduler(), 1.0)
    assert counter.calls["mask"] == -(-N_ROWS // 64)  # full depth: one group per input batch, one mask each
    assert counter.calls["layer"] == counter.calls["mask"] * fitted.n_layers_


def _realistic_mix():
    """Many short rows and a long tail of long ones, as real text is."""
    texts, _ = make_texts(2500, seed=5)
    rng = np.random.RandomState(0)
    return [" ".join([t] * int(min(12, rng.geometric(0.35)))) for t in texts]


def _layer_calls(fitted, monkeypatch, X, scheduler, batch_size, threshold):
    """(rows, width) of every layer call, and the exit layers, of one predict at ``batch_size``."""
    network = copy.deepcopy(fitted).network_
    shapes = []
    layer, _ = _instrumented(network, HostSyncCounter(), shapes)
    monkeypatch.setattr(type(network), "run_layer", layer)
    engine = InferenceEngine(
        network,
        fitted.tokenizer_,
        fitted.temperatures_,
        128,
        batch_size,
        torch.device("cpu"),
        scheduler,
        length_multiple=8,
    )
    _, layers = engine.predict(X, None, MaxProbability(), threshold)
    monkeypatch.undo()
    return np.array(shapes), layers


@pytest.mark.parametrize("tolerance", [0.0, 0.25])
def test_refilling_pads_no_more_than_shrinking_at_batch_512(fitted, monkeypatch, tolerance):
    """Rows share a call only within their bounds: padded tokens at most (1 + tolerance) x the shrinking scheduler's."""
    X = _realistic_mix()
    shrinking, layers = _layer_calls(fitted, monkeypatch, X, ShrinkingScheduler(), 512, 0.99)
    refilling, same_layers = _layer_calls(fitted, monkeypatch, X, RefillingScheduler(tolerance), 512, 0.99)
    np.testing.assert_array_equal(same_layers, layers)
    # every row runs the same layers under both, so equal real tokens: compare the padded areas
    area = {name: int((shapes[:, 0] * shapes[:, 1]).sum()) for name, shapes in [("s", shrinking), ("r", refilling)]}
    assert 1.5 < layers.mean() < fitted.n_layers_
    assert area["r"] <= (1 + tolerance) * area["s"]
    assert refilling[:, 0].sum() == shrinking[:, 0].sum()  # the same row-layers, in other groupings


def test_a_padding_tolerance_fills_the_layer_calls(fitted, monkeypatch):
    """At batch 64, bounds keep the rows of neighbouring input batches apart; a tolerance lets them share calls."""
    X = _realistic_mix()[:1200]
    fill, area = {}, {}
    for tolerance in (0.0, 0.25, float("inf")):
        shapes, layers = _layer_calls(fitted, monkeypatch, X, RefillingScheduler(tolerance), 64, 0.99)
        fill[tolerance] = shapes[:, 0].mean() / 64  # mean rows per call over the batch size
        area[tolerance] = int((shapes[:, 0] * shapes[:, 1]).sum())
    assert 1.5 < layers.mean() < fitted.n_layers_
    assert fill[0.0] < fill[0.25] <= fill[float("inf")], fill
    assert fill[0.25] >= fill[0.0] + 0.03 and fill[float("inf")] >= 0.9, fill  # more than one merged call
    assert area[0.25] <= 1.25 * area[0.0] and area[0.0] <= area[float("inf")], area


#: Torch calls of the engine outside the layers, per layer call at batch size 1: an exit step's head
#: (pooling, dense, tanh, output), temperature and softmax, rule (max, compare) and transfer of the
#: decision (cpu, numpy) make 10, plus each row's share of its window's embedding and its own slices.
MAX_OPS_PER_EXIT_STEP = 11


def test_the_exit_step_issues_few_torch_calls_at_batch_1(fitted, monkeypatch):
    """At batch 1 every torch call of the exit step is a visible cost: a regression guard on their number."""
    counter, widths, layers = _measure(fitted, monkeypatch, ShrinkingScheduler(), 0.999, batch_size=1, multiple=1)
    n_calls = counter.calls["layer"]
    assert n_calls == len(widths) == int(layers.sum())
    assert counter.ops["other"] / n_calls <= MAX_OPS_PER_EXIT_STEP, (counter.ops, n_calls)
    assert counter.total_syncs() / n_calls <= 1.0
