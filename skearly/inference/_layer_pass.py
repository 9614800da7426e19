"""One early-exit pass over a dataset: run layers on groups of rows, apply exit heads, record where each row leaves.

This is the layer runner and exit step of the inference engine; the batch
schedulers (:mod:`skearly.inference`) decide *which* rows go through *which*
layer when, and call :meth:`ExitPass.advance` for each layer call.

The pass talks to the network only through the layer-runner interface of
:mod:`skearly.inference` (``embed``, ``layer_context``, ``run_layer``,
``exit_logits``, ``exit_layers``, ``n_layers_used``, ``n_classes``), so every
backend and encoder family runs through the same code.

Device traffic is kept small: the calibrated probabilities and exit layers are
written into buffers on the device and copied back once, at the end of the pass
(:meth:`ExitPass.results`); the only transfer per exit head is the boolean
"still running" vector, which the host needs to know which rows go on. Row
lengths are known on the host from tokenization, so trimming padding needs no
transfer at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from skearly._utils.batching import Batch
from skearly.exit_criteria import ExitCriterion

__all__ = ["RowGroup", "ExitPass"]


def _round_up(length: int, multiple: int) -> int:
    return -(-length // multiple) * multiple


@dataclass
class RowGroup:
    """Rows of the dataset waiting for, or going through, the same layer.

    Parameters
    ----------
    rows : ndarray of int64, shape (n,)
        Dataset row indices, aligned with the hidden states.
    lengths : ndarray of int64, shape (n,)
        Number of real (non-padding) tokens of each row (host copy).
    hidden : torch.Tensor of shape (n, width, hidden_size)
        Hidden states, padded to ``width >= lengths.max()``.
    mask : torch.Tensor of shape (n, width)
        Attention mask (1 = token, 0 = padding).
    state : torch.Tensor or None
        The exit criterion's per-row state.
    """

    rows: np.ndarray
    lengths: np.ndarray
    hidden: torch.Tensor
    mask: torch.Tensor
    state: torch.Tensor | None
    context: Any = field(default=None, repr=False)  # the runner's layer context, built lazily for this exact group

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        """Padded length of the hidden states."""
        return int(self.hidden.shape[1])

    def padded(self) -> bool:
        """Whether some row is shorter than :attr:`width`."""
        return bool((self.lengths < self.width).any())

    def subset(self, index: np.ndarray, length_multiple: int = 1) -> RowGroup:
        """The rows at positions ``index``, with padding no longer needed trimmed away.

        The width is cut to the longest remaining row, rounded up to
        ``length_multiple`` (fewer distinct shapes on accelerators).
        """
        lengths = self.lengths[index]
        width = min(self.width, _round_up(int(lengths.max()), length_multiple))
        rows = torch.as_tensor(index, device=self.hidden.device)
        return RowGroup(
            rows=self.rows[index],
            lengths=lengths,
            hidden=self.hidden.index_select(0, rows)[:, :width],
            mask=self.mask.index_select(0, rows)[:, :width],
            state=None if self.state is None else self.state.index_select(0, rows),
        )

    def split(self, n: int) -> tuple[RowGroup, RowGroup]:
        """The first ``n`` rows and the rest, each trimmed."""
        return self.subset(np.arange(n)), self.subset(np.arange(n, len(self)))

    def widened(self, width: int) -> RowGroup:
        """The same rows padded with zeros (hidden states and mask) to ``width >= self.width``."""
        return RowGroup(self.rows, self.lengths, _pad(self.hidden, width), _pad(self.mask, width), self.state)

    @staticmethod
    def merge(groups: Sequence[RowGroup]) -> RowGroup:
        """One group holding the rows of ``groups`` (padded with zeros to the widest)."""
        if len(groups) == 1:
            return groups[0]
        width = max(g.width for g in groups)
        wide = [g.widened(width) for g in groups]
        states = [g.state for g in groups]
        return RowGroup(
            rows=np.concatenate([g.rows for g in groups]),
            lengths=np.concatenate([g.lengths for g in groups]),
            hidden=torch.cat([g.hidden for g in wide]),
            mask=torch.cat([g.mask for g in wide]),
            state=None if states[0] is None else torch.cat(states),
        )


def _pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """``t`` (rows, length, ...) padded with zeros along the length axis to ``width``."""
    extra = width - t.shape[1]
    if not extra:
        return t
    return torch.cat([t, t.new_zeros((t.shape[0], extra, *t.shape[2:]))], dim=1)


class ExitPass:
    """Early-exit prediction of ``n_rows`` rows: layer calls on :class:`RowGroup` s, exits recorded on the device.

    Parameters
    ----------
    runner : object
        A layer runner (the network, or what a backend made of it).
    criterion : ExitCriterion
        The exit rule.
    threshold : float
        Passed to the criterion; ``criterion.exits_early(threshold)`` false means
        only the last head is evaluated.
    temperatures : ndarray of shape (n_heads,)
        One temperature per exit head.
    n_rows : int
        Number of dataset rows (size of the output buffers).
    device : torch.device
        Where to compute.
    length_multiple : int, default=1
        Padded widths are rounded up to a multiple of this.
    """

    def __init__(
        self,
        runner: Any,
        criterion: ExitCriterion,
        threshold: float,
        temperatures: np.ndarray,
        n_rows: int,
        device: torch.device,
        length_multiple: int = 1,
    ) -> None:
        self.runner = runner
        self.criterion = criterion
        self.threshold = threshold
        self.device = device
        self.length_multiple = length_multiple
        self.early = criterion.exits_early(threshold)
        self.exit_layers = tuple(runner.exit_layers)
        self.n_layers = int(runner.n_layers_used)
        self._head_after = {layer - 1: head for head, layer in enumerate(self.exit_layers)}
        self._last_head = len(self.exit_layers) - 1
        self._inverse_t = torch.as_tensor(1.0 / np.asarray(temperatures, dtype=np.float32), device=device)
        self._proba = torch.zeros((n_rows, int(runner.n_classes)), dtype=torch.float32, device=device)
        self._layers = torch.zeros(n_rows, dtype=torch.long, device=device)

    def start(self, batch: Batch, lengths: np.ndarray) -> RowGroup:
        """Embed a padded batch of dataset rows: the group that enters layer 0.

        Parameters
        ----------
        batch : Batch
            Padded token ids of the rows ``batch.rows`` (on any device).
        lengths : ndarray of int64
            Token count of each of those rows.
        """
        batch = batch.to(self.device)
        hidden = self.runner.embed(batch.input_ids, batch.token_type_ids, batch.attention_mask)
        state = self.criterion.start(len(batch.rows), self.device) if self.early else None
        group = RowGroup(np.asarray(batch.rows), np.asarray(lengths), hidden, batch.attention_mask, state)
        if self.length_multiple > 1:  # the collated width is the longest row: round it up once
            width = _round_up(group.width, self.length_multiple)
            if width > group.width:
                group = group.widened(width)
        return group

    def advance(self, index: int, group: RowGroup) -> RowGroup | None:
        """Run 0-based layer ``index`` on ``group``, then its exit head if one follows.

        Returns
        -------
        RowGroup or None
            The rows that go on to layer ``index + 1`` (trimmed), or ``None`` when
            none do.
        """
        if group.context is None:
            group.context = self.runner.layer_context(group.hidden, group.mask)
        group.hidden = self.runner.run_layer(index, group.hidden, group.context)
        head = self._head_after.get(index)
        if head is None:
            return group
        last = head == self._last_head
        if not last and not self.early:
            return group
        logits = self.runner.exit_logits(head, group.hidden, group.mask if group.padded() else None)
        proba = torch.softmax(logits.float() * self._inverse_t[head], dim=1)
        rows = torch.as_tensor(group.rows, device=self.device)
        if last:
            self._proba[rows] = proba
            self._layers[rows] = self.exit_layers[head]
            return None
        leaving, state = self.criterion.decide(proba, group.state, self.threshold)
        self._proba[rows] = torch.where(leaving[:, None], proba, self._proba[rows])
        self._layers[rows] = torch.where(leaving, self.exit_layers[head], self._layers[rows])
        staying = (~leaving).cpu().numpy()  # the one host transfer of an exit step
        if not staying.any():
            return None
        group.state = state
        if staying.all():
            return group
        return group.subset(np.flatnonzero(staying), self.length_multiple)

    def results(self) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities at each row's exit (float64) and its 1-based exit layer, copied back once."""
        return self._proba.double().cpu().numpy(), self._layers.cpu().numpy()
