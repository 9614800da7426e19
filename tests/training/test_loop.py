import numpy as np
import torch
from conftest import make_texts
from transformers import AutoTokenizer

from skearly._utils.batching import tokenize
from skearly.network._multi_exit import MultiExitNetwork
from skearly.training._loop import TrainingConfig, _linear_warmup, _optimizer, train_jointly


def _setup(tiny_encoder, n=96):
    texts, y = make_texts(n, seed=5)
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder, local_files_only=True)
    torch.manual_seed(0)
    network = MultiExitNetwork.from_pretrained(tiny_encoder, exit_layers=(1, 2, 3, 4), n_classes=2)
    return network, tokenize(tokenizer, texts, None, 32), y


def test_joint_training_lowers_the_summed_loss_and_trains_every_head(tiny_encoder):
    network, encoded, y = _setup(tiny_encoder)
    before = [head.out.weight.detach().clone() for head in network.heads]
    config = TrainingConfig(epochs=4, batch_size=16, learning_rate=3e-3, weight_decay=0.01, warmup_ratio=0.1)
    log = train_jointly(network, encoded, y, config, rng=np.random.default_rng(0), device=torch.device("cpu"))
    history = log.losses
    assert len(history) == 4 and history[-1] < history[0]
    assert all(not torch.equal(b, h.out.weight) for b, h in zip(before, network.heads))
    assert not network.training  # left in eval mode


def test_linear_warmup_then_decay():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = _linear_warmup(optimizer, total_steps=10, warmup_ratio=0.2)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == 0.5 and rates[1] == 1.0
    assert all(a >= b for a, b in zip(rates[1:], rates[2:]))
    assert rates[-1] < 0.2


def test_head_learning_rate_applies_to_the_heads_only(tiny_encoder):
    network, _, _ = _setup(tiny_encoder)
    config = TrainingConfig(
        epochs=1, batch_size=16, learning_rate=1e-4, weight_decay=0.01, warmup_ratio=0.1, head_learning_rate=2e-3
    )
    rate_of = {}
    for group in _optimizer(network, config).param_groups:
        for param in group["params"]:
            rate_of[id(param)] = (group["lr"], group["weight_decay"])
    for name, param in network.named_parameters():
        lr, decay = rate_of[id(param)]
        assert lr == (2e-3 if name.startswith("heads.") else 1e-4), name
        assert decay == (0.0 if param.ndim < 2 or "LayerNorm" in name else 0.01), name
    assert len(rate_of) == len(list(network.parameters()))


def test_without_head_learning_rate_every_parameter_learns_at_learning_rate(tiny_encoder):
    network, _, _ = _setup(tiny_encoder)
    config = TrainingConfig(epochs=1, batch_size=16, learning_rate=1e-4, weight_decay=0.01, warmup_ratio=0.1)
    groups = _optimizer(network, config).param_groups
    assert {group["lr"] for group in groups} == {1e-4} and len(groups) == 2


def _clip_calls(monkeypatch, tiny_encoder, max_grad_norm):
    """Train one epoch with ``max_grad_norm``; return (calls to clip_grad_norm_, steps)."""
    network, encoded, y = _setup(tiny_encoder)
    calls = []
    clip = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        calls.append((max_norm, len(parameters)))
        return clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    config = TrainingConfig(
        epochs=1, batch_size=16, learning_rate=1e-4, weight_decay=0.01, warmup_ratio=0.1, max_grad_norm=max_grad_norm
    )
    train_jointly(network, encoded, y, config, rng=np.random.default_rng(0), device=torch.device("cpu"))
    return calls, len(list(network.parameters()))


def test_max_grad_norm_clips_the_global_norm_of_every_parameter_at_every_step(monkeypatch, tiny_encoder):
    calls, n_params = _clip_calls(monkeypatch, tiny_encoder, 0.5)
    assert calls == [(0.5, n_params)] * 6  # 96 rows / batch 16


def test_no_max_grad_norm_never_clips(monkeypatch, tiny_encoder):
    calls, _ = _clip_calls(monkeypatch, tiny_encoder, None)
    assert calls == []


def test_clipping_changes_the_trained_weights(tiny_encoder):
    weights = []
    for max_grad_norm in (None, 1e-3):
        network, encoded, y = _setup(tiny_encoder)
        config = TrainingConfig(
            epochs=1, batch_size=16, learning_rate=1e-3, weight_decay=0.0, warmup_ratio=0.1, max_grad_norm=max_grad_norm
        )
        train_jointly(network, encoded, y, config, rng=np.random.default_rng(0), device=torch.device("cpu"))
        weights.append(network.heads[0].out.weight.detach().clone())
    assert not torch.allclose(weights[0], weights[1])


def _tokens(tiny_encoder, group_by_length, precision="float32"):
    network, encoded, y = _setup(tiny_encoder)
    config = TrainingConfig(
        epochs=2,
        batch_size=8,
        learning_rate=3e-3,
        weight_decay=0.01,
        warmup_ratio=0.1,
        group_by_length=group_by_length,
        precision=precision,
    )
    log = train_jointly(network, encoded, y, config, rng=np.random.default_rng(0), device=torch.device("cpu"))
    return log, encoded


def test_the_log_counts_real_and_padded_tokens_of_every_epoch(tiny_encoder):
    log, encoded = _tokens(tiny_encoder, group_by_length=False)
    assert log.real_tokens == 2 * int(encoded.lengths().sum())  # every row once per epoch
    assert log.padded_tokens > log.real_tokens and log.seconds > 0
    assert log.tokens_per_second == log.real_tokens / log.seconds


def test_length_grouped_training_processes_less_padding(tiny_encoder):
    random_log, _ = _tokens(tiny_encoder, group_by_length=False)
    grouped_log, _ = _tokens(tiny_encoder, group_by_length=True)
    assert grouped_log.real_tokens == random_log.real_tokens
    assert grouped_log.padded_tokens < random_log.padded_tokens


def test_bfloat16_training_runs_on_cpu_and_learns(tiny_encoder):
    log, _ = _tokens(tiny_encoder, group_by_length=True, precision="bfloat16")
    assert log.losses[-1] < log.losses[0]


def test_the_log_reports_tokens_in_a_record(tiny_encoder, caplog):
    with caplog.at_level("INFO", logger="skearly.training._loop"):
        log, _ = _tokens(tiny_encoder, group_by_length=True)
    done = [r for r in caplog.records if r.getMessage().startswith("fine-tuned on")]
    assert len(done) == 1 and (done[0].real_tokens, done[0].padded_tokens) == (log.real_tokens, log.padded_tokens)
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(epochs) == 2 and all("real tokens/s" in m and "padding" in m for m in epochs)
