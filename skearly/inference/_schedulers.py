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
  (the pool proposed in FastBERT issue #35).

``"auto"`` picks the refilling scheduler on CUDA and the shrinking one on CPU.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from skearly._utils.batching import Batch
from skearly._utils.strategy import Registry, Strategy
from skearly.inference._layer_pass import ExitPass, RowGroup

__all__ = [
    "BatchScheduler",
    "ShrinkingScheduler",
    "RefillingScheduler",
    "SCHEDULERS",
    "resolve_scheduler",
]


class BatchScheduler(Strategy):
    """Base class of batch schedulers: subclass it, set ``name``, override :meth:`run` and register it."""

    def run(self, exit_pass: ExitPass, batches: Iterable[tuple[Batch, np.ndarray]], batch_size: int) -> None:
        """Push every input row through the layers until it exits.

        Parameters
        ----------
        exit_pass : ExitPass
            Runs layer calls and records the exits.
        batches : iterable of (Batch, ndarray)
            Length-sorted padded input batches of at most ``batch_size`` rows,
            each with the token count of its rows.
        batch_size : int
            The wanted number of rows per layer call.
        """
        raise NotImplementedError


class ShrinkingScheduler(BatchScheduler):
    """Each input batch goes through the layers alone; exited rows leave it and padding is trimmed."""

    name = "shrinking"

    def run(self, exit_pass, batches, batch_size):
        """Run each input batch to completion before the next (see :meth:`BatchScheduler.run`)."""
        for batch, lengths in batches:
            group: RowGroup | None = exit_pass.start(batch, lengths)
            for index in range(exit_pass.n_layers):
                group = exit_pass.advance(index, group)
                if group is None:
                    break


class RefillingScheduler(BatchScheduler):
    """Per-layer queues: every layer call runs a full batch of waiting rows, refilled from new input."""

    name = "refilling"

    def run(self, exit_pass, batches, batch_size):
        """Run the deepest layer with a full batch waiting; flush at the end (see :meth:`BatchScheduler.run`)."""
        queues: list[list[RowGroup]] = [[] for _ in range(exit_pass.n_layers)]
        waiting = [0] * exit_pass.n_layers

        def call(index: int) -> None:
            taken: list[RowGroup] = []
            room = batch_size
            queue = queues[index]
            while queue and room:
                group = queue[0]
                if len(group) <= room:
                    taken.append(queue.pop(0))
                else:
                    taken_part, queue[0] = group.split(room)
                    taken.append(taken_part)
                room -= len(taken[-1])
            waiting[index] -= batch_size - room
            out = exit_pass.advance(index, RowGroup.merge(taken))
            if out is not None:
                queues[index + 1].append(out)
                waiting[index + 1] += len(out)

        def deepest_full() -> int | None:
            for index in range(exit_pass.n_layers - 1, -1, -1):
                if waiting[index] >= batch_size:
                    return index
            return None

        for batch, lengths in batches:
            group = exit_pass.start(batch, lengths)
            queues[0].append(group)
            waiting[0] += len(group)
            while (index := deepest_full()) is not None:
                call(index)
        for index in range(exit_pass.n_layers):  # flush, shallowest first: rows move down and merge
            while waiting[index]:
                call(index)


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
