"""Every supported encoder family, on a tiny random config: the layer loop equals the model's own forward.

For each family the network's seams (``embed`` -> ``layer_context`` ->
``run_layer`` x n) must give the hidden states of the Hugging Face model's own
forward (``output_hidden_states``) within 1e-5 on non-padding positions; rows
dropped mid-way (padding trimmed, context rebuilt) must not change the others;
and the estimator must fit and predict end to end.
"""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import make_texts
from torch import nn
from transformers import AutoConfig, AutoModel

from skearly import EarlyExitTextClassifier
from skearly.encoders import make_tiny_encoder, tiny_families
from skearly.network._multi_exit import MultiExitNetwork
from skearly.network.adapters import BertAdapter, adapter_for, register, supported_model_types

FAMILIES = tiny_families()
TOLERANCE = 1e-5

#: Variants that exercise code paths the default tiny configs skip.
VARIANTS = {
    "albert-inner-groups": ("albert", {"inner_group_num": 2}),  # 2 ALBERT layers inside each shared group
    "deberta-v2-conv": ("deberta-v2", {"conv_kernel_size": 3, "position_biased_input": True}),  # v2's conv
    "electra-same-width": ("electra", {"embedding_size": 32}),  # no embeddings_project
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, str]:
    """One tiny encoder folder per family and variant."""
    root = tmp_path_factory.mktemp("families")
    out = {family: str(make_tiny_encoder(root / family, family=family)) for family in FAMILIES}
    for name, (family, overrides) in VARIANTS.items():
        out[name] = str(make_tiny_encoder(root / name, family=family, config_overrides=overrides))
    return out


def _batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ids (never a special or padding id), the padding mask, and token types 0/1 (pair-like)."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(1000, 30000, (len(lengths), width), generator=generator)
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
    types = ((torch.arange(width)[None, :] >= torch.tensor(lengths)[:, None] // 2) & mask.bool()).long()
    return ids * mask, mask, types


def _reference(folder: str, ids, mask, types) -> list[torch.Tensor]:
    """The Hugging Face model's own hidden states: embeddings' output, then one per layer."""
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    kwargs = {"token_type_ids": types} if getattr(model.config, "type_vocab_size", 0) > 1 else {}
    with torch.no_grad():
        states = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, **kwargs).hidden_states
    n_layers = model.config.num_hidden_layers
    stride = (len(states) - 1) // n_layers  # ALBERT records each layer inside a group
    return [states[0], *states[stride::stride]]


def _network(folder: str) -> MultiExitNetwork:
    n_layers = AutoConfig.from_pretrained(folder, local_files_only=True).num_hidden_layers
    network = MultiExitNetwork.from_pretrained(folder, exit_layers=range(1, n_layers + 1), n_classes=2)
    return network.eval()


def _loop(network: MultiExitNetwork, ids, mask, types) -> list[torch.Tensor]:
    """Hidden states after each layer, through the network's seams."""
    with torch.no_grad():
        hidden = network.embed(ids, types, mask)
        context = network.layer_context(hidden, mask)
        states = []
        for index in range(network.n_layers_used):
            hidden = network.run_layer(index, hidden, context)
            states.append(hidden)
    return states


def _max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Largest absolute difference on non-padding positions."""
    keep = mask.bool()
    return float((a[keep] - b[keep]).abs().max())


def test_every_family_has_an_adapter_and_a_tiny_config():
    assert set(FAMILIES) <= set(supported_model_types())
    assert set(supported_model_types()) >= {"bert", "roberta", "xlm-roberta", "electra", "albert"}


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("name", [*FAMILIES, *VARIANTS])
def test_layer_loop_equals_the_models_own_forward(folders, name, padded):
    lengths = [14, 9, 3, 11] if padded else [14, 14, 14]
    ids, mask, types = _batch(lengths)
    reference = _reference(folders[name], ids, mask, types)
    network = _network(folders[name])
    with torch.no_grad():
        embedded = network.embed(ids, types, mask)
    states = _loop(network, ids, mask, types)
    assert len(states) == len(reference) - 1
    diffs = [_max_diff(ours, theirs, mask) for ours, theirs in zip(states, reference[1:], strict=True)]
    assert max(diffs) <= TOLERANCE, diffs
    if network.config.model_type not in ("albert", "electra"):  # their recorded first state is projected
        assert _max_diff(embedded, reference[0], mask) <= TOLERANCE


def _drop_and_continue(network, ids, mask, types, keep, at_layer) -> list[torch.Tensor]:
    """Run ``at_layer`` layers on the full batch, keep rows ``keep``, trim padding, finish the layers.

    As the engine does: the kept rows' hidden states and mask are sliced, and the
    layer context is rebuilt from them (never sliced).
    """
    with torch.no_grad():
        hidden = network.embed(ids, types, mask)
        context = network.layer_context(hidden, mask)
        for index in range(at_layer):
            hidden = network.run_layer(index, hidden, context)
        hidden, mask = hidden[keep], mask[keep]
        length = int(mask.sum(dim=1).max())
        hidden, mask = hidden[:, :length], mask[:, :length]
        context = network.layer_context(hidden, mask)
        states = []
        for index in range(at_layer, network.n_layers_used):
            hidden = network.run_layer(index, hidden, context)
            states.append(hidden)
    return states


@pytest.mark.parametrize("name", [*FAMILIES, *VARIANTS])
def test_rows_leaving_and_trimmed_padding_do_not_change_the_others(folders, name):
    ids, mask, types = _batch([14, 9, 3, 11], seed=1)
    network = _network(folders[name])
    full = _loop(network, ids, mask, types)
    keep = torch.tensor([False, True, True, True])  # the longest row leaves: padding is trimmed to 11
    after = _drop_and_continue(network, ids, mask, types, keep, at_layer=2)
    kept_mask = mask[keep][:, :11]
    for ours, theirs in zip(after, full[2:], strict=True):
        assert ours.shape[1] == 11
        assert _max_diff(ours, theirs[keep][:, :11], kept_mask) <= TOLERANCE


@pytest.mark.parametrize("name", [*FAMILIES, *VARIANTS])
def test_snapshot_round_trip(folders, name):
    ids, mask, types = _batch([14, 9, 3, 11], seed=2)
    torch.manual_seed(0)
    network = MultiExitNetwork.from_pretrained(folders[name], exit_layers=(1, 4), n_classes=3).eval()
    restored = pickle.loads(pickle.dumps(network.snapshot()))
    restored = MultiExitNetwork.from_snapshot(restored)
    assert type(restored.adapter) is type(network.adapter)
    with torch.no_grad():
        for a, b in zip(network(ids, mask, types), restored(ids, mask, types), strict=True):
            torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_pooler_is_dropped_and_heads_fit_the_hidden_size(folders, family):
    network = _network(folders[family])
    assert getattr(network.encoder, "pooler", None) is None
    assert not any(name.startswith("pooler") for name, _ in network.encoder.named_parameters())
    assert network.heads[0].dense.in_features == network.config.hidden_size


@pytest.mark.parametrize("family", FAMILIES)
def test_pickle_and_save_load_round_trip_every_family(folders, family, toy, tmp_path):
    X, y = toy
    clf = EarlyExitTextClassifier(folders[family], epochs=1, batch_size=16, calibration_size=0.25, random_state=0)
    clf.fit(X[:24], y[:24]).set_params(threshold=1.0)
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), expected)
    np.testing.assert_array_equal(EarlyExitTextClassifier.load(clf.save(tmp_path / "model")).predict_proba(X), expected)


@pytest.fixture(scope="module")
def toy():
    X, y = make_texts(48, seed=3)
    return X, y


@pytest.mark.parametrize("family", FAMILIES)
def test_fit_predict_end_to_end_with_rows_leaving_mid_batch(folders, family, toy):
    X, y = toy
    clf = EarlyExitTextClassifier(
        folders[family], epochs=1, learning_rate=3e-3, batch_size=16, calibration_size=0.25, random_state=0
    ).fit(X, y)
    proba_full = clf.set_params(threshold=1.0, predict_batch_size=64).predict_proba(X)
    assert set(clf.exit_layers_) == {clf.n_layers_}
    predicted_full = clf.predict(X)
    row_by_row = clf.set_params(predict_batch_size=1).predict_proba(X)
    np.testing.assert_allclose(row_by_row, proba_full, atol=1e-5)
    np.testing.assert_array_equal(clf.predict(X), predicted_full)
    # a threshold between the rows' first-head confidences: some rows leave at layer 1, others go on
    threshold = float(np.median(clf.calibration_proba_[0].max(axis=1)))
    proba = clf.set_params(threshold=threshold, predict_batch_size=16, scheduler="shrinking").predict_proba(X)
    exits = clf.exit_layers_
    assert len(set(exits)) > 1, (threshold, np.unique(exits))
    # rows from several batches merged into one group at each layer: the context is rebuilt for the merge
    refilled = clf.set_params(scheduler="refilling").predict_proba(X)
    np.testing.assert_array_equal(clf.exit_layers_, exits)
    np.testing.assert_allclose(refilled, proba, atol=1e-5)


def test_unsupported_family_is_refused_naming_the_supported_ones():
    class GPTLike(nn.Module):
        config = type("Config", (), {"model_type": "gpt2"})()

    with pytest.raises(ValueError, match=r"model_type='gpt2'.*supported.*bert.*deberta-v2.*mpnet"):
        adapter_for(GPTLike())


def test_encoder_without_its_familys_layers_is_refused():
    class Hollow(nn.Module):
        config = type("Config", (), {"model_type": "mpnet"})()

    with pytest.raises(ValueError, match="no transformer layers"):
        adapter_for(Hollow())


def test_exit_layers_past_the_encoder_are_refused(folders):
    with pytest.raises(ValueError, match="go past the encoder's 4 layers"):
        MultiExitNetwork.from_pretrained(folders["mpnet"], exit_layers=(2, 5), n_classes=2)


def test_a_model_type_cannot_get_a_second_adapter():
    class Other(BertAdapter):
        pass

    with pytest.raises(ValueError, match="'bert' already has an adapter"):
        register("bert")(Other)
    assert register("bert")(BertAdapter) is BertAdapter  # registering the same class again is harmless


def test_unknown_tiny_family_is_refused(tmp_path):
    with pytest.raises(ValueError, match="family must be one of"):
        make_tiny_encoder(tmp_path, family="gpt2")


def _called(run) -> Counter:
    """How often ``run()`` calls each Python function, by qualified name."""
    import sys

    names: Counter = Counter()
    sys.setprofile(lambda frame, event, arg: names.update([frame.f_code.co_qualname]) if event == "call" else None)
    try:
        run()
    finally:
        sys.setprofile(None)
    return names


@pytest.mark.parametrize("family", FAMILIES)
def test_call_layer_at_inference_skips_the_layer_wrappers_with_the_same_result(folders, family):
    network = _network(folders[family])
    ids, mask, types = _batch([7, 7])
    with torch.no_grad():
        hidden = network.embed(ids, types, None)
        context = network.layer_context(hidden, None)
    checkpointing = "GradientCheckpointingLayer.__init_subclass__.<locals>.forward_with_checkpointing"
    outputs = {}

    def run(mode, key):
        with mode():
            outputs[key] = network.run_layer(0, hidden, context)

    with_grad = _called(lambda: run(torch.enable_grad, "grad"))  # training: the module is called as usual
    at_inference = _called(lambda: run(torch.inference_mode, "inference"))
    assert not at_inference[checkpointing]  # (some families' layers have no such wrapper: see the BERT test below)
    renames = [sum(n for name, n in calls.items() if "deprecate_kwarg" in name) for calls in (with_grad, at_inference)]
    assert renames[1] <= renames[0]  # the layer's own rename wrappers skipped (its sub-modules may have theirs)
    assert at_inference["Module._call_impl"] == with_grad["Module._call_impl"] - 1  # the layer's own module call
    assert torch.equal(outputs["inference"], outputs["grad"].detach())
    calls = []
    network.adapter.layers[0].register_forward_hook(lambda *a: calls.append(1))
    with torch.inference_mode():
        hooked = network.run_layer(0, hidden, context)
    assert calls == [1] and torch.equal(hooked, outputs["grad"].detach())  # a layer with hooks keeps them


def test_plain_forward_peels_the_wrappers_down_to_the_layers_own_forward():
    from transformers.models.bert.modeling_bert import BertLayer

    from skearly.network.adapters._base import _plain_forward

    assert BertLayer.forward.__code__.co_qualname != "BertLayer.forward"  # wrapped (else this proves nothing)
    assert _plain_forward(BertLayer).__code__.co_qualname == "BertLayer.forward"


def test_released_layers_are_no_longer_held(folders):
    import gc
    import weakref

    network = _network(folders["bert"])
    adapter = network.adapter
    assert adapter.layers and adapter.layers == list(network.encoder.encoder.layer)  # found once, at creation
    first = weakref.ref(adapter.layers[0])
    network.encoder.encoder.layer = nn.ModuleList()
    adapter.release_layers()
    gc.collect()
    assert adapter.layers == [] and first() is None  # nothing keeps the old layers alive


def test_mpnet_inference_bias_is_a_slice_of_one_table_rebuilt_when_its_weights_change(folders):
    network = _network(folders["mpnet"])
    adapter, encoder = network.adapter, network.adapter.encoder.encoder
    size, heads = network.config.hidden_size, network.config.num_attention_heads

    def bias(rows: int, length: int) -> torch.Tensor:
        return network.layer_context(torch.zeros(rows, length, size), None).position_bias

    with torch.no_grad():
        long, short = bias(3, 20), bias(2, 7)
        assert short.shape == (1, heads, 7, 7)  # one row: the attention broadcasts it
        assert short.untyped_storage().data_ptr() == long.untyped_storage().data_ptr()  # one table, not rebuilt
        own = encoder.compute_position_bias(torch.zeros(2, 7, size))  # transformers' own, a copy per row
        assert torch.equal(short.expand_as(own), own)
        encoder.relative_attention_bias.weight.add_(1.0)  # an in-place update (an optimizer step, load_state_dict)
        after = bias(2, 7)
        assert torch.equal(after.expand_as(own), encoder.compute_position_bias(torch.zeros(2, 7, size)))
        assert not torch.equal(after, short)
    training = bias(2, 7)  # autograd on: built for the batch, so that the bias weights get their gradient
    assert training.requires_grad and training.shape == (2, heads, 7, 7)
    assert pickle.loads(pickle.dumps(adapter))._bias_table is None  # the table is not pickled
