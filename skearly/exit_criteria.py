"""Exit criteria: the rule that decides, after each exit head, which rows may stop.

A criterion sees the calibrated class probabilities of the current head for the
rows still running and returns a boolean mask of rows that exit now. It may keep
a per-row state tensor (for example a patience counter); the inference engine
drops the rows of exited samples from that state, so a criterion never needs to
know which rows have left.

Three criteria ship with skearly:

* :class:`MaxProbability` -- the paper's rule (Schwartz et al., 2020): exit when
  the calibrated top-class probability reaches ``threshold``.
* :class:`Entropy` -- DeeBERT's rule (Xin et al., 2020) on a 0-1 scale: exit when
  ``1 - H(p) / log(n_classes)`` reaches ``threshold``.
* :class:`Patience` -- PABEE's rule (Zhou et al., 2020): exit when the predicted
  class has stayed the same for ``patience`` consecutive heads.

For every criterion ``threshold=1.0`` means "never exit early".
"""

from __future__ import annotations

import math

import torch

from skearly._utils.strategy import Registry, Strategy
from skearly._utils.validation import check_number

__all__ = ["ExitCriterion", "MaxProbability", "Entropy", "Patience", "CRITERIA", "resolve_criterion"]


class ExitCriterion(Strategy):
    """Base class of exit rules; subclass it and override :meth:`decide` (and :meth:`start` for state).

    Subclasses should be cheap, stateless objects apart from their parameters:
    the per-row state lives in the tensor returned by :meth:`start`.
    """

    def validate(self, n_heads: int) -> None:
        """Check the parameters against a model with ``n_heads`` exit heads (called by ``fit`` and ``predict``).

        The base class accepts every model; a subclass raises a ``ValueError`` for a
        setting that could never let a row exit early.
        """

    def start(self, n_rows: int, device: torch.device) -> torch.Tensor | None:
        """Return the initial per-row state for ``n_rows`` rows (``None`` if the rule keeps none)."""
        return None

    def decide(
        self, proba: torch.Tensor, state: torch.Tensor | None, threshold: float
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decide which rows exit after the current head.

        Parameters
        ----------
        proba : torch.Tensor of shape (n_rows, n_classes)
            Calibrated probabilities of the current head for the rows still running.
        state : torch.Tensor or None
            The state of those rows (rows of exited samples already removed).
        threshold : float
            The estimator's ``threshold`` parameter.

        Returns
        -------
        exit_mask : torch.Tensor of bool, shape (n_rows,)
            True for rows that stop here.
        state : torch.Tensor or None
            The updated state, one row per input row.
        """
        raise NotImplementedError

    def exits_early(self, threshold: float) -> bool:
        """Whether any row can leave before the last head (False for ``threshold >= 1``)."""
        return threshold < 1.0


class MaxProbability(ExitCriterion):
    """Exit when the calibrated top-class probability is at least ``threshold`` (Schwartz et al., 2020)."""

    name = "max_proba"

    def decide(self, proba, state, threshold):
        """Exit the rows whose top-class probability is at least ``threshold`` (see :meth:`ExitCriterion.decide`)."""
        return proba.amax(dim=1) >= threshold, state


class Entropy(ExitCriterion):
    """Exit when the normalised confidence ``1 - H(p) / log(n_classes)`` is at least ``threshold`` (DeeBERT)."""

    name = "entropy"

    def decide(self, proba, state, threshold):
        """Exit the rows whose normalised confidence is at least ``threshold`` (see :meth:`ExitCriterion.decide`)."""
        entropy = -(proba * torch.log(proba.clamp_min(1e-12))).sum(dim=1)
        confidence = 1.0 - entropy / math.log(proba.shape[1])
        return confidence >= threshold, state


class Patience(ExitCriterion):
    """Exit when ``patience`` consecutive heads predict the same class (PABEE, Zhou et al., 2020).

    The first head sets the prediction with a streak of 1; a row exits at the
    first head where its streak reaches ``patience``. ``threshold`` only keeps
    its common meaning: ``threshold >= 1`` disables early exit.

    Parameters
    ----------
    patience : int, default=2
        Number of consecutive agreeing heads needed to exit (>= 1; numpy integers
        are accepted), at most the model's number of exit heads (checked by ``fit`` and ``predict``).
    """

    name = "patience"

    def __init__(self, patience: int = 2) -> None:
        self.patience = check_number("patience", patience, kind=int, low=1)

    def validate(self, n_heads: int) -> None:
        """Refuse a ``patience`` longer than the ``n_heads`` exit heads: no row could exit early."""
        if self.patience > n_heads:
            raise ValueError(
                f"Patience(patience={self.patience}) needs more agreeing heads than this model has ({n_heads}): "
                f"no row could exit early. Pass patience <= {n_heads}."
            )

    def start(self, n_rows, device):
        """Per-row state: last predicted class (-1 before the first head) and streak length."""
        # column 0: last predicted class (-1 = none yet); column 1: streak length
        state = torch.zeros((n_rows, 2), dtype=torch.long, device=device)
        state[:, 0] = -1
        return state

    def decide(self, proba, state, threshold):
        """Extend or restart each row's streak; exit the rows whose streak reaches ``patience``."""
        prediction = proba.argmax(dim=1)
        same = prediction == state[:, 0]
        streak = torch.where(same, state[:, 1] + 1, torch.ones_like(state[:, 1]))
        return streak >= self.patience, torch.stack([prediction, streak], dim=1)


#: Exit criteria by alias (``EarlyExitTextClassifier(exit_criterion=name)``).
CRITERIA: Registry[ExitCriterion] = Registry(ExitCriterion, "exit_criterion")
for _cls in (MaxProbability, Entropy, Patience):
    CRITERIA.register(_cls)


def resolve_criterion(criterion: str | ExitCriterion, n_heads: int | None = None) -> ExitCriterion:
    """Turn the ``exit_criterion`` parameter (a name or an :class:`ExitCriterion`) into an object.

    With ``n_heads`` (a fitted model's number of exit heads), also check it against
    that model (:meth:`ExitCriterion.validate`).

    Raises
    ------
    ValueError
        For an unknown name, or a criterion that does not suit ``n_heads`` heads.
    TypeError
        For anything that is neither a name nor an :class:`ExitCriterion`.
    """
    resolved = CRITERIA.resolve(criterion)
    if n_heads is not None:
        resolved.validate(n_heads)
    return resolved
