"""Joint fine-tuning of the encoder and every exit head under one training objective (see :mod:`skearly.objectives`)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from skearly._utils.batching import Batch, Encoded, n_batches, shuffled_batches
from skearly._utils.devices import autocast
from skearly.network import MultiExitNetwork
from skearly.objectives import SummedCrossEntropy, TrainingObjective

logger = logging.getLogger(__name__)


@dataclass
class TrainingConfig:
    """Optimisation settings of :func:`train_jointly` (mirrors the estimator's parameters)."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    warmup_ratio: float
    verbose: int = 0
    objective: TrainingObjective = field(default_factory=SummedCrossEntropy)
    head_learning_rate: float | None = None
    max_grad_norm: float | None = None


def _optimizer(network: MultiExitNetwork, config: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW with no weight decay on biases and LayerNorm weights (the BERT recipe).

    The exit heads (fresh, randomly initialised) learn at ``config.head_learning_rate``
    when it is set, the pretrained encoder at ``config.learning_rate``.
    """
    head_lr = config.head_learning_rate or config.learning_rate
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in network.named_parameters():
        decay = 0.0 if param.ndim < 2 or "LayerNorm" in name else config.weight_decay
        lr = head_lr if name.startswith("heads.") else config.learning_rate
        groups.setdefault((lr, decay), []).append(param)
    param_groups = [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in groups.items()]
    try:  # the fused kernel is ~7x faster than the per-tensor loop on CPU
        return torch.optim.AdamW(param_groups, lr=config.learning_rate, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(param_groups, lr=config.learning_rate)


def _linear_warmup(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float):
    """Learning rate rising linearly over the warm-up steps, then falling linearly to zero."""
    warmup = max(1, int(round(warmup_ratio * total_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _forward(network: MultiExitNetwork, batch: Batch) -> list[torch.Tensor]:
    return network(batch.input_ids, batch.attention_mask, batch.token_type_ids)


def _check_finite(loss: torch.Tensor, epoch: int, step: int, config: TrainingConfig) -> float:
    """The loss as a float; a non-finite one (NaN or infinite) stops the fit: its weights would predict NaN."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise ValueError(
            f"The training loss became {value} at epoch {epoch + 1}, step {step + 1} of that epoch (objective "
            f"{config.objective!r}, learning_rate={config.learning_rate}): fit stopped rather than produce a model "
            "that predicts NaN. Try a lower learning_rate or head_learning_rate, max_grad_norm=1.0, "
            "mixed_precision=False, or other objective parameters."
        )
    return value


def train_jointly(
    network: MultiExitNetwork,
    encoded: Encoded,
    y: np.ndarray,
    config: TrainingConfig,
    *,
    rng: np.random.Generator,
    device: torch.device,
    mixed_precision: bool = False,
) -> list[float]:
    """Fine-tune ``network`` in place on ``encoded`` rows with integer labels ``y``.

    Every step runs all layers up to the last exit, and the loss is
    ``config.objective`` of all exit heads' logits (by default the sum of their
    cross-entropy losses), so the encoder learns to serve every head at once.

    Parameters
    ----------
    network : MultiExitNetwork
        The network to train (already on ``device``).
    encoded : Encoded
        Tokenized training rows.
    y : ndarray of shape (n_rows,)
        Integer class indices.
    config : TrainingConfig
        Optimiser, schedule and progress settings.
    rng : numpy.random.Generator
        Source of the batch order.
    device : torch.device
        Where to compute.
    mixed_precision : bool, default=False
        Use autocast on CUDA.

    Returns
    -------
    list of float
        Mean loss (of ``config.objective``) of each epoch.

    Raises
    ------
    ValueError
        When the loss becomes NaN or infinite (naming the epoch and step), before the weights are updated with it.
    """
    labels = torch.as_tensor(y, dtype=torch.long)
    steps_per_epoch = n_batches(len(encoded), config.batch_size)
    optimizer = _optimizer(network, config)
    scheduler = _linear_warmup(optimizer, config.epochs * steps_per_epoch, config.warmup_ratio)
    scaler = torch.amp.GradScaler("cuda", enabled=mixed_precision and device.type == "cuda")
    network.train()
    history = []
    progress = tqdm(total=config.epochs * steps_per_epoch, desc="fine-tuning", unit="batch", disable=not config.verbose)
    try:
        for epoch in range(config.epochs):
            total, seen = 0.0, 0
            for step, batch in enumerate(shuffled_batches(encoded, config.batch_size, rng)):
                batch = batch.to(device)
                target = labels[batch.rows].to(device)
                with autocast(device, mixed_precision):
                    logits = _forward(network, batch)
                    loss = config.objective.loss(
                        logits, target, exit_layers=network.exit_layers, epoch=epoch, n_epochs=config.epochs
                    )
                value = _check_finite(loss, epoch, step, config)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.max_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(network.parameters(), config.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                total += value * len(batch.rows)
                seen += len(batch.rows)
                progress.update()
                progress.set_postfix(epoch=epoch + 1, loss=f"{total / seen:.4f}")
            history.append(total / seen)
            logger.info("epoch %d/%d: mean loss %.4f", epoch + 1, config.epochs, history[-1])
    finally:
        progress.close()
        network.eval()
    return history
