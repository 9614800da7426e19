"""The layer runner's building blocks: embedded input windows, row groups (subset, split, merge), the all-heads pass."""

import numpy as np
import pytest
import torch
from conftest import make_texts
from transformers import AutoTokenizer

from skearly._utils.batching import sorted_batches, tokenize
from skearly.exit_criteria import MaxProbability
from skearly.inference._layer_pass import _UNBUILT, EMBED_WINDOW_ROWS, ExitPass, RowGroup
from skearly.network._full_pass import all_head_logits
from skearly.network._multi_exit import MultiExitNetwork


def _group(lengths, width=None, hidden_size=3, state=True, length_multiple=1):
    lengths = np.asarray(lengths)
    width = width or int(lengths.max())
    n = len(lengths)
    hidden = torch.arange(n * width * hidden_size, dtype=torch.float32).reshape(n, width, hidden_size)
    mask = (torch.arange(width)[None, :] < torch.as_tensor(lengths)[:, None]).long()
    rows = np.arange(10, 10 + n)
    state = torch.arange(n) * 2 if state else None
    return RowGroup(rows, lengths, hidden, mask, state, length_multiple)


def test_subset_keeps_rows_and_trims_padding():
    group = _group([7, 5, 3, 2])
    sub = group.subset(np.array([1, 3]))
    assert sub.rows.tolist() == [11, 13] and sub.lengths.tolist() == [5, 2]
    assert sub.width == 5  # trimmed to the longest remaining row
    torch.testing.assert_close(sub.hidden, group.hidden[[1, 3], :5])
    torch.testing.assert_close(sub.state, torch.tensor([2, 6]))
    assert sub.context is _UNBUILT  # built anew for the new shape, when it runs
    rounded = _group([7, 5, 3, 2], width=8, length_multiple=4)
    assert rounded.subset(np.array([2, 3])).width == 4  # rounded up to the multiple, never past the width


def test_split_keeps_widths_a_multiple_of_the_bucket():
    group = _group([13, 11, 9, 3, 2, 1], width=16, length_multiple=8)
    first, rest = group.split(2)
    assert (first.width, rest.width) == (16, 16)
    first, rest = group.split(3)
    assert (first.width, rest.width) == (16, 8)
    assert rest.rows.tolist() == [13, 14, 15]
    torch.testing.assert_close(rest.hidden, group.hidden[3:, :8])
    torch.testing.assert_close(rest.state, group.state[3:])


def test_split_and_merge_round_trip():
    group = _group([6, 4, 4, 1])
    head, rest = group.split(2)
    assert len(head) == 2 and len(rest) == 2 and rest.width == 4
    merged = RowGroup.merge([head, rest])
    assert merged.rows.tolist() == group.rows.tolist() and merged.width == 6
    real = merged.mask.bool()
    torch.testing.assert_close(merged.hidden[real], group.hidden[group.mask.bool()])
    assert not merged.mask[2:, 4:].any() and not merged.hidden[2:, 4:].any()  # padding added as zeros
    assert merged.padded() and not _group([3, 3]).padded()


def test_unpadded_groups_carry_no_mask_and_get_one_when_merged_with_padding():
    bare = _group([4, 4])
    bare.mask = None  # what an input batch of equal lengths (every batch-1 row) carries
    assert not bare.padded() and bare.head_mask() is None
    assert bare.subset(np.array([1])).mask is None and bare.split(1)[1].mask is None
    assert RowGroup.merge([bare, bare]).mask is None  # still nothing padded: no mask built
    padded = _group([6, 2])
    merged = RowGroup.merge([padded, bare])
    assert merged.width == 6 and merged.padded()
    want = (torch.arange(6)[None, :] < torch.tensor([6, 2, 4, 4])[:, None]).long()
    assert torch.equal(merged.mask, want)
    assert not merged.hidden[2:, 4:].any()  # the unpadded rows widened with zeros
    assert merged.rows.tolist() == [10, 11, 10, 11]


def test_all_head_logits_keeps_input_order(tiny_encoder):
    texts, _ = make_texts(20, seed=5)
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder, local_files_only=True)
    torch.manual_seed(0)
    network = MultiExitNetwork.from_pretrained(tiny_encoder, exit_layers=(1, 2, 3, 4), n_classes=2).eval()
    encoded = tokenize(tokenizer, texts, None, 32)
    with torch.inference_mode():
        logits = all_head_logits(network, encoded, batch_size=7, device=torch.device("cpu"))
    assert logits.shape == (4, 20, 2)
    for row in (0, 5, 19):
        ids = torch.tensor([encoded.input_ids[row]])
        with torch.no_grad():
            direct = network(ids, torch.ones_like(ids))
        for head in range(4):
            np.testing.assert_allclose(logits[head, row], direct[head][0].numpy(), atol=1e-5)


def _tiny_pass(tiny_encoder, n_texts=150, batch_size=1, max_length=32, multiple=1):
    """A tiny network's exit pass over texts of mixed lengths (some cut at ``max_length``)."""
    texts, _ = make_texts(n_texts, seed=7)
    rng = np.random.RandomState(7)
    texts = [" ".join([t] * int(rng.randint(1, 5))) for t in texts]
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder, local_files_only=True)
    torch.manual_seed(0)
    network = MultiExitNetwork.from_pretrained(tiny_encoder, exit_layers=(1, 2, 3, 4), n_classes=2).eval()
    encoded = tokenize(tokenizer, texts, None, max_length)
    exit_pass = ExitPass(network, MaxProbability(), 0.8, np.ones(4), len(texts), torch.device("cpu"), multiple)
    return network, encoded, exit_pass


@pytest.mark.parametrize("batch_size, multiple", [(1, 1), (3, 1), (5, 8), (64, 1), (100, 8)])
def test_embedded_windows_equal_embedding_each_batch_alone(tiny_encoder, batch_size, multiple):
    """Windows of 64+ rows give each input batch the embeddings, mask (None: unpadded) and width of its own call."""
    network, encoded, exit_pass = _tiny_pass(tiny_encoder, multiple=multiple)
    got = list(exit_pass.embedded(encoded, batch_size))
    want = list(sorted_batches(encoded, batch_size, multiple))
    assert len(got) == len(want) == -(-len(encoded) // batch_size)
    with torch.inference_mode():
        for mine, alone in zip(got, want, strict=True):
            np.testing.assert_array_equal(mine.rows, alone.rows)
            np.testing.assert_array_equal(mine.lengths, encoded.lengths()[alone.rows])
            assert mine.hidden.shape[1] == alone.input_ids.shape[1] and mine.hidden.shape[1] % multiple == 0
            if bool(alone.attention_mask.all()):  # no row padded: the host knows it, no mask is sliced
                assert mine.mask is None
            else:
                assert torch.equal(mine.mask, alone.attention_mask)
            hidden = network.embed(alone.input_ids, alone.token_type_ids, alone.attention_mask)
            real = alone.attention_mask.bool()
            assert torch.equal(mine.hidden[real], hidden[real])  # bit for bit on every real token


def test_small_batches_share_one_embedding_call_per_window(tiny_encoder, monkeypatch):
    network, encoded, exit_pass = _tiny_pass(tiny_encoder, n_texts=150)
    calls = []
    embed = network.embed
    monkeypatch.setattr(network, "embed", lambda *args: calls.append(args[0].shape) or embed(*args))
    with torch.inference_mode():
        assert len(list(exit_pass.embedded(encoded, 1))) == 150
    assert [shape[0] for shape in calls] == [EMBED_WINDOW_ROWS, EMBED_WINDOW_ROWS, 150 - 2 * EMBED_WINDOW_ROWS]
    calls.clear()
    with torch.inference_mode():
        list(exit_pass.embedded(encoded, 100))  # batches of 100 rows: a window is one batch
    assert [shape[0] for shape in calls] == [100, 50]


def test_results_refuse_rows_that_never_reached_an_exit_head(tiny_encoder):
    """A scheduler that drops rows must not yield zero probabilities and layer 0 for them."""
    network, encoded, exit_pass = _tiny_pass(tiny_encoder, n_texts=10)
    with torch.inference_mode():
        batches = list(exit_pass.embedded(encoded, 4))
        for batch in batches[:-1]:  # the last input batch (2 rows) never runs
            group = exit_pass.start(batch)
            for index in range(network.n_layers_used):
                group = exit_pass.advance(index, group)
                if group is None:
                    break
    with pytest.raises(RuntimeError, match="2 rows never reached an exit head"):
        exit_pass.results()
    with torch.inference_mode():
        group = exit_pass.start(batches[-1])
        for index in range(network.n_layers_used):
            group = exit_pass.advance(index, group)
            if group is None:
                break
    proba, layers = exit_pass.results()  # every row done: the results come back
    assert layers.min() >= 1 and np.allclose(proba.sum(axis=1), 1.0)
