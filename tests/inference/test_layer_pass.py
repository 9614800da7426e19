"""The layer runner's building blocks: row groups (subset, split, merge) and the all-heads pass."""

import numpy as np
import torch
from conftest import make_texts
from transformers import AutoTokenizer

from skearly._utils.batching import tokenize
from skearly.inference._layer_pass import _UNBUILT, RowGroup
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
    return RowGroup(rows, lengths, hidden, mask, state, torch.as_tensor(rows), length_multiple)


def test_subset_keeps_rows_and_trims_padding():
    group = _group([7, 5, 3, 2])
    sub = group.subset(np.array([1, 3]))
    assert sub.rows.tolist() == [11, 13] and sub.lengths.tolist() == [5, 2]
    assert sub.width == 5  # trimmed to the longest remaining row
    torch.testing.assert_close(sub.hidden, group.hidden[[1, 3], :5])
    torch.testing.assert_close(sub.state, torch.tensor([2, 6]))
    assert sub.row_ids.tolist() == [11, 13]
    assert sub.context is _UNBUILT  # built anew for the new shape, when it runs
    rounded = _group([7, 5, 3, 2], width=8, length_multiple=4)
    assert rounded.subset(np.array([2, 3])).width == 4  # rounded up to the multiple, never past the width


def test_split_keeps_widths_a_multiple_of_the_bucket():
    group = _group([13, 11, 9, 3, 2, 1], width=16, length_multiple=8)
    first, rest = group.split(2)
    assert (first.width, rest.width) == (16, 16)
    first, rest = group.split(3)
    assert (first.width, rest.width) == (16, 8)
    assert rest.rows.tolist() == [13, 14, 15] and rest.row_ids.tolist() == [13, 14, 15]
    torch.testing.assert_close(rest.hidden, group.hidden[3:, :8])
    torch.testing.assert_close(rest.state, group.state[3:])


def test_split_and_merge_round_trip():
    group = _group([6, 4, 4, 1])
    head, rest = group.split(2)
    assert len(head) == 2 and len(rest) == 2 and rest.width == 4
    merged = RowGroup.merge([head, rest])
    assert merged.rows.tolist() == group.rows.tolist() and merged.width == 6
    assert merged.row_ids.tolist() == group.rows.tolist()
    real = merged.mask.bool()
    torch.testing.assert_close(merged.hidden[real], group.hidden[group.mask.bool()])
    assert not merged.mask[2:, 4:].any() and not merged.hidden[2:, 4:].any()  # padding added as zeros
    assert merged.padded() and not _group([3, 3]).padded()


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
