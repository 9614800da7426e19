import pytest
import torch
from torch import nn
from transformers import AutoModel

from skearly.network._multi_exit import ExitHead, MultiExitNetwork


@pytest.fixture(scope="module")
def network(tiny_encoder):
    torch.manual_seed(0)
    return MultiExitNetwork.from_pretrained(tiny_encoder, exit_layers=(1, 2), n_classes=3).eval()


def _batch():
    ids = torch.tensor([[101, 2204, 3185, 102, 0], [101, 2919, 2143, 2003, 102]])
    return ids, (ids != 0).long()


def test_forward_gives_one_logit_tensor_per_head_and_stops_at_last_exit(network, monkeypatch):
    calls = []
    original = MultiExitNetwork.run_layer

    def spy(self, index, hidden, bias):
        calls.append(index)
        return original(self, index, hidden, bias)

    monkeypatch.setattr(MultiExitNetwork, "run_layer", spy)
    ids, mask = _batch()
    with torch.no_grad():
        outputs = network(ids, mask)
    assert [o.shape for o in outputs] == [(2, 3), (2, 3)]
    assert calls == [0, 1]  # the tiny encoder has 4 layers; layers 3-4 are never run
    assert network.n_layers_used == 2


def test_pooler_is_dropped(network):
    assert network.encoder.pooler is None


def test_unsupported_encoder_is_refused():
    class NotBert(nn.Module):
        config = None

    with pytest.raises(ValueError, match="not supported.*bert, deberta-v2"):
        MultiExitNetwork(NotBert(), exit_layers=(1,), n_classes=2)


def test_mean_pooling_without_mask_equals_full_mask():
    head = ExitHead(8, 2, dropout=0.0, pooling="mean").eval()
    hidden = torch.randn(3, 5, 8)
    torch.testing.assert_close(head(hidden, None), head(hidden, torch.ones(3, 5, dtype=torch.long)))


def test_padding_does_not_change_a_row(network):
    ids, mask = _batch()
    with torch.no_grad():
        padded = network(ids, mask)[-1][0]
        alone = network(ids[:1, :4], mask[:1, :4])[-1][0]
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)


def test_snapshot_round_trip(network):
    ids, mask = _batch()
    restored = MultiExitNetwork.from_snapshot(network.snapshot())
    with torch.no_grad():
        for a, b in zip(network(ids, mask), restored(ids, mask)):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
    bad = network.snapshot() | {"version": 999}
    with pytest.raises(ValueError, match="format version 999"):
        MultiExitNetwork.from_snapshot(bad)


def test_pretrained_weights_are_loaded(tiny_encoder, network):
    reference = AutoModel.from_pretrained(tiny_encoder, local_files_only=True)
    torch.testing.assert_close(
        network.encoder.embeddings.word_embeddings.weight, reference.embeddings.word_embeddings.weight
    )
