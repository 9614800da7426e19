"""Batch schedulers: which rows go through which layer, and when.

A scheduler drives an :class:`~skearly.inference._layer_pass.ExitPass` over a stream of
length-sorted input batches. Two ship with skearly, both giving the same
predictions and exit layers row for row (up to float rounding):

* :class:`ShrinkingScheduler` (``"shrinking"``) -- each input batch goes
  through the layers on its own; rows that exit leave it, so later layers run
  ever-smaller batches. Simple, and good where small batches cost little per
  row (CPUs).
* :class:`RefillingScheduler` (``"refilling"``) -- rows that go on past layer
  ``k`` wait in layer ``k + 1``'s queue; the engine runs whichever layer has a
  full batch waiting (deepest first), feeds new input only when none has, and
  flushes the queues at the end. Every layer call then runs close to the chosen
  batch size however many rows exit, which is what keeps an accelerator busy
  (the pool proposed in FastBERT issue #35). A call takes the longest rows
  waiting (merge by length), so that rows sharing a padded width are of
  similar length; its ``padding_tolerance`` says how much wider than on their
  own the rows of several input batches may be padded to share a call.

``"auto"`` picks the refilling scheduler on CUDA and the shrinking one on CPU.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from skearly._utils.rounding import round_up
from skearly._utils.strategy import Registry, Strategy
from skearly._utils.validation import check_number
from skearly.inference._layer_pass import EmbeddedBatch, ExitPass, RowGroup

__all__ = [
    "BatchScheduler",
    "ShrinkingScheduler",
    "RefillingScheduler",
    "SCHEDULERS",
    "resolve_scheduler",
]


class BatchScheduler(Strategy):
    """Base class of batch schedulers: subclass it, set ``name``, override :meth:`run` and register it."""

    def run(self, exit_pass: ExitPass, batches: Iterable[EmbeddedBatch], batch_size: int) -> None:
        """Push every input row through the layers until it exits.

        Parameters
        ----------
        exit_pass : ExitPass
            Runs layer calls and records the exits.
        batches : iterable of EmbeddedBatch
            Length-sorted, embedded input batches of at most ``batch_size`` rows
            (:meth:`ExitPass.embedded`).
        batch_size : int
            The wanted number of rows per layer call.
        """
        raise NotImplementedError


class ShrinkingScheduler(BatchScheduler):
    """Each input batch goes through the layers alone; exited rows leave it and padding is trimmed."""

    name = "shrinking"

    def run(self, exit_pass, batches, batch_size):
        """Run each input batch to completion before the next (see :meth:`BatchScheduler.run`)."""
        for batch in batches:
            group: RowGroup | None = exit_pass.start(batch)
            for index in range(exit_pass.n_layers):
                group = exit_pass.advance(index, group)
                if group is None:
                    break


class RefillingScheduler(BatchScheduler):
    """Per-layer queues: every layer call runs a full batch of waiting rows, refilled from new input.

    Each row has a bound (:attr:`RowGroup.bounds`): the padded width it would have
    at this layer had its input batch run on its own, exits trimming it. A row
    shares a layer call only where the call's width is at most its bound times
    ``1 + padding_tolerance``; among the rows that fit, a call takes the longest
    waiting.

    Parameters
    ----------
    padding_tolerance : float, default=0.0
        How much wider than its bound a row may be padded, as a fraction of it
        (>= 0; ``inf`` lifts the bound). ``0`` pads no row wider than
        :class:`ShrinkingScheduler` does, so it pads no more tokens in all; but
        rows of neighbouring input batches then rarely fit one call, so after
        many exits the calls run well short of the batch size. A tolerance lets
        them share calls: fuller calls (fewer of them, what keeps a GPU busy)
        for at most that fraction more padded width per row.
        ``benchmarks/results/scheduler_fill.md`` measures the trade-off.

    Examples
    --------
    >>> RefillingScheduler(padding_tolerance=0.25)
    RefillingScheduler(padding_tolerance=0.25)
    """

    name = "refilling"

    def __init__(self, padding_tolerance: float = 0.0) -> None:
        self.padding_tolerance = check_number("padding_tolerance", padding_tolerance, kind=float, low=0.0)

    def run(self, exit_pass, batches, batch_size):
        """Run the deepest layer with a full batch waiting; flush at the end (see :meth:`BatchScheduler.run`)."""
        queues: list[list[RowGroup]] = [[] for _ in range(exit_pass.n_layers)]
        stretch = 1.0 + self.padding_tolerance

        def call(index: int, width: int) -> None:
            taken, queues[index] = _take(queues[index], width, batch_size, stretch)
            out = exit_pass.advance(index, RowGroup.merge(taken))
            if out is not None:
                queues[index + 1].append(out)

        def deepest_full() -> tuple[int, int] | None:
            for index in range(exit_pass.n_layers - 1, -1, -1):
                width = _call_width(queues[index], batch_size, stretch)
                if width is not None:
                    return index, width
            return None

        for origin, batch in enumerate(batches):
            queues[0].append(exit_pass.start(batch, origin))
            while (ready := deepest_full()) is not None:
                call(*ready)
        for index in range(exit_pass.n_layers):  # flush, shallowest first: rows move down and merge
            while queues[index]:
                call(index, _call_width(queues[index], 1, stretch))


def _needed(queue: list[RowGroup], stretch: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token count, smallest width and widest allowed width (bound x ``stretch``) of every row in ``queue``."""
    lengths = np.concatenate([g.lengths for g in queue])
    multiple = queue[0].length_multiple
    needed = round_up(lengths, multiple)
    bounds = np.concatenate([g.bounds if g.bounds is not None else np.full(len(g), g.width) for g in queue])
    return lengths, needed, bounds * stretch


def _call_width(queue: list[RowGroup], n: int, stretch: float) -> int | None:
    """The widest call width at which at least ``n`` waiting rows fit (``None``: none)."""
    if not queue or sum(len(g) for g in queue) < n:
        return None
    _, needed, allowed = _needed(queue, stretch)
    for width in np.unique(needed)[::-1]:
        if int(((needed <= width) & (allowed >= width)).sum()) >= n:
            return int(width)
    return None


def _take(queue: list[RowGroup], width: int, n: int, stretch: float) -> tuple[list[RowGroup], list[RowGroup]]:
    """The ``n`` longest rows of ``queue`` that fit a call of ``width`` (as parts of its groups), and the rest.

    Decided on the host from the token counts; a group taken whole, or cut into
    its longest rows and the rest, moves no data (see :meth:`RowGroup.split`).
    """
    lengths, needed, allowed = _needed(queue, stretch)
    fits = np.flatnonzero((needed <= width) & (allowed >= width))
    chosen = np.zeros(len(lengths), dtype=bool)
    chosen[fits[np.argsort(-lengths[fits], kind="stable")[:n]]] = True
    taken, left = [], []
    start = 0
    for group in queue:
        mine = chosen[start : start + len(group)]
        start += len(group)
        if mine.all():
            taken.append(group)
        elif not mine.any():
            left.append(group)
        else:
            k = int(mine.sum())
            if mine[:k].all():  # the group's longest rows come first (length-sorted): a cut, no copy
                first, rest = group.split(k)
            else:
                first, rest = group.subset(np.flatnonzero(mine)), group.subset(np.flatnonzero(~mine))
            taken.append(first)
            left.append(rest)
    return taken, left


#: Batch schedulers by alias (``"auto"`` is resolved by :func:`resolve_scheduler`).
SCHEDULERS: Registry[BatchScheduler] = Registry(BatchScheduler, "scheduler")
SCHEDULERS.register(ShrinkingScheduler)
SCHEDULERS.register(RefillingScheduler)

#: What ``"auto"`` resolves to, by device type (anything else: shrinking).
_AUTO = {"cuda": RefillingScheduler}


def resolve_scheduler(scheduler: str | BatchScheduler, device: torch.device) -> BatchScheduler:
    """Turn the ``scheduler`` parameter (an alias, ``"auto"`` or a :class:`BatchScheduler`) into an object.

    Parameters
    ----------
    scheduler : str or BatchScheduler
        ``"auto"``, a name from :data:`SCHEDULERS`, or a scheduler object.
    device : torch.device
        The device ``"auto"`` chooses for: refilling on CUDA, shrinking elsewhere.

    Raises
    ------
    ValueError
        For an unknown alias (the message lists the known ones).
    TypeError
        For anything that is neither a string nor a :class:`BatchScheduler`.
    """
    if isinstance(scheduler, str) and scheduler == "auto":
        return _AUTO.get(device.type, ShrinkingScheduler)()
    return SCHEDULERS.resolve(scheduler, extra_names=("auto",))
