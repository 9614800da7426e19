"""Training objectives: how the losses of the exit heads combine into the one loss ``fit`` minimises.

Every training step runs all layers up to the last exit and gives the
objective the logits of every head; it returns one scalar loss. Four
objectives ship with skearly:

* :class:`SummedCrossEntropy` (``"sum"``, the default) -- the paper's loss
  (Schwartz et al., 2020): the plain sum of the heads' cross-entropies.
* :class:`DepthWeighted` (``"depth_weighted"``) -- PABEE's loss (Zhou et al.,
  2020): head ``i`` weighted by its layer number, weights normalised to sum to 1,
  so deeper heads count more.
* :class:`LayerWeighted` (``"layer_weighted"``) -- the same with weights
  ``layer ** power``; the default ``power=-1`` makes the shallow heads count more.
* :class:`SelfDistillation` (``"distill"``) -- FastBERT-style self-distillation
  (Liu et al., 2020): the final head learns the labels, and
  every earlier head learns a mix of the labels and the final head's
  temperature-softened distribution (KL divergence), so early heads learn to
  agree with the final one; ``SelfDistillation(warmup_epochs=k)`` trains the
  first ``k`` epochs on the summed loss before distilling (staged).

Write your own by subclassing :class:`TrainingObjective` and overriding
:meth:`TrainingObjective.loss`; pass an instance as the estimator's ``objective``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from skearly._utils.strategy import Registry, Strategy
from skearly._utils.validation import check_number

__all__ = [
    "TrainingObjective",
    "SummedCrossEntropy",
    "DepthWeighted",
    "LayerWeighted",
    "SelfDistillation",
    "OBJECTIVES",
    "resolve_objective",
]


class TrainingObjective(Strategy):
    """Base class of training objectives; subclass it and override :meth:`loss`.

    Objects hold only their parameters (they are compared, hashed and saved by
    them, and are part of the fit cache's key).
    """

    def validate(self, *, n_epochs: int, n_heads: int) -> None:
        """Check the parameters against the fit they serve (``fit`` calls it before training).

        The base class accepts every fit; a subclass raises a ``ValueError`` for a
        setting that would silently do nothing with ``n_epochs`` epochs and ``n_heads`` exit heads.
        """

    def loss(
        self,
        logits: Sequence[torch.Tensor],
        target: torch.Tensor,
        *,
        exit_layers: Sequence[int],
        epoch: int,
        n_epochs: int,
    ) -> torch.Tensor:
        """The scalar loss of one training batch.

        Parameters
        ----------
        logits : sequence of torch.Tensor of shape (n_rows, n_classes)
            Logits of every exit head, shallowest first (the last is the final classifier).
        target : torch.Tensor of shape (n_rows,)
            Integer class indices.
        exit_layers : sequence of int
            1-based encoder layer of each head, in the order of ``logits``.
        epoch : int
            0-based index of the current epoch (for staged objectives).
        n_epochs : int
            Number of training epochs.

        Returns
        -------
        torch.Tensor
            A scalar to minimise.
        """
        raise NotImplementedError


def _summed_cross_entropy(logits: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    return sum(F.cross_entropy(head.float(), target) for head in logits)


class SummedCrossEntropy(TrainingObjective):
    """Sum of the cross-entropy losses of all heads (Schwartz et al., 2020): the default."""

    name = "sum"

    def loss(self, logits, target, *, exit_layers, epoch, n_epochs):
        """``sum_i CE(head_i, y)`` (see :meth:`TrainingObjective.loss`)."""
        return _summed_cross_entropy(logits, target)


def _layer_weighted_cross_entropy(
    logits: Sequence[torch.Tensor], target: torch.Tensor, exit_layers: Sequence[int], power: float
) -> torch.Tensor:
    """``sum_i w_i CE(head_i, y)`` with ``w_i`` proportional to ``layer_i ** power``, summing to 1."""
    weights = [float(layer) ** power for layer in exit_layers]
    total = sum(weights)
    return sum(
        (weight / total) * F.cross_entropy(head.float(), target) for weight, head in zip(weights, logits, strict=True)
    )


class DepthWeighted(TrainingObjective):
    """Cross-entropies weighted by layer number, ``sum_i l_i CE_i / sum_i l_i`` (PABEE, Zhou et al., 2020)."""

    name = "depth_weighted"

    def loss(self, logits, target, *, exit_layers, epoch, n_epochs):
        """Layer-weighted mean of the heads' cross-entropies (see :meth:`TrainingObjective.loss`)."""
        return _layer_weighted_cross_entropy(logits, target, exit_layers, 1.0)


#: Largest ``|power|`` of :class:`LayerWeighted`: ``48 ** 10`` still fits a float32 weight comfortably.
_MAX_POWER = 10.0
#: Largest softening temperature of :class:`SelfDistillation` (beyond, every distribution is uniform).
_MAX_TEMPERATURE = 100.0


class LayerWeighted(TrainingObjective):
    """Cross-entropies weighted by a power of the layer number: ``sum_i l_i^p CE_i / sum_i l_i^p``.

    ``power=1`` is :class:`DepthWeighted` (PABEE: deeper heads count more),
    ``power=0`` the summed loss scaled by ``1 / n_heads``, and a negative power
    (the default, ``-1``: weights ``1 / layer``) makes the shallow heads count
    more, for models meant to exit early.

    Parameters
    ----------
    power : float, default=-1.0
        Exponent ``p`` of the layer number, in ``[-10, 10]`` (beyond, the weights of
        a deep encoder overflow or all go to one head).
    """

    name = "layer_weighted"

    def __init__(self, power: float = -1.0) -> None:
        self.power = check_number("power", power, kind=float, low=-_MAX_POWER, high=_MAX_POWER)

    def loss(self, logits, target, *, exit_layers, epoch, n_epochs):
        """Weighted mean of the heads' cross-entropies (see :meth:`TrainingObjective.loss`)."""
        return _layer_weighted_cross_entropy(logits, target, exit_layers, self.power)


class SelfDistillation(TrainingObjective):
    """Every early head also matches the final head's softened distribution (FastBERT-style).

    The loss is ``CE(final, y) + sum_{i < last} [(1 - alpha) CE(head_i, y) +
    alpha T^2 KL(softmax(final / T) || softmax(head_i / T))]``. The final
    head's distribution is a fixed target (no gradient flows into it through
    the KL terms), so the final classifier learns from the labels alone.
    With ``warmup_epochs > 0`` the first epochs train on the summed loss and
    distillation starts once the final head has learnt something to teach
    (a staged schedule; the encoder keeps training throughout).

    Parameters
    ----------
    temperature : float, default=2.0
        Softening temperature ``T`` of teacher and students, in ``(0, 100]``; the KL term
        is scaled by ``T**2`` so its gradients keep their size (Hinton et al., 2015).
    alpha : float, default=0.5
        Weight of the distillation term for the early heads, in [0, 1]: 0 is
        the summed loss, 1 pure distillation.
    warmup_epochs : int, default=0
        Number of first epochs trained on the summed loss (:class:`SummedCrossEntropy`)
        before distillation starts; 0 distils from the first step (joint training).
        Less than the estimator's ``epochs`` (checked by ``fit``), so that distillation happens.
    """

    name = "distill"

    def __init__(self, temperature: float = 2.0, alpha: float = 0.5, warmup_epochs: int = 0) -> None:
        self.temperature = check_number(
            "temperature", temperature, kind=float, low=0, low_open=True, high=_MAX_TEMPERATURE
        )
        self.alpha = check_number("alpha", alpha, kind=float, low=0, high=1)
        self.warmup_epochs = check_number("warmup_epochs", warmup_epochs, kind=int, low=0)

    def validate(self, *, n_epochs: int, n_heads: int) -> None:
        """Refuse ``warmup_epochs >= n_epochs`` (> 0): distillation would never start."""
        if self.warmup_epochs and self.warmup_epochs >= n_epochs:
            raise ValueError(
                f"SelfDistillation(warmup_epochs={self.warmup_epochs}) with epochs={n_epochs}: distillation would "
                f"never start. Pass warmup_epochs < epochs (at most {max(n_epochs - 1, 0)}), or more epochs."
            )

    def loss(self, logits, target, *, exit_layers, epoch, n_epochs):
        """Labels for the final head, labels and the final head's soft targets for the others."""
        if epoch < self.warmup_epochs:
            return _summed_cross_entropy(logits, target)
        final = logits[-1].float()
        t = self.temperature
        teacher = F.log_softmax(final.detach() / t, dim=1)
        total = F.cross_entropy(final, target)
        for head in logits[:-1]:
            head = head.float()
            student = F.log_softmax(head / t, dim=1)
            kl = F.kl_div(student, teacher, reduction="batchmean", log_target=True) * (t * t)
            total = total + (1.0 - self.alpha) * F.cross_entropy(head, target) + self.alpha * kl
        return total


#: Training objectives by alias (``EarlyExitTextClassifier(objective=name)``).
OBJECTIVES: Registry[TrainingObjective] = Registry(TrainingObjective, "objective")
for _cls in (SummedCrossEntropy, DepthWeighted, LayerWeighted, SelfDistillation):
    OBJECTIVES.register(_cls)


def resolve_objective(objective: str | TrainingObjective) -> TrainingObjective:
    """Turn the ``objective`` parameter (a name or a :class:`TrainingObjective`) into an object.

    Raises
    ------
    ValueError
        For an unknown name.
    TypeError
        For anything that is neither a name nor a :class:`TrainingObjective`.
    """
    return OBJECTIVES.resolve(objective)
