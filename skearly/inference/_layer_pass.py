"""One early-exit pass over a dataset: run layers on groups of rows, apply exit heads, record where each row leaves.

This is the layer runner and exit step of the inference engine; the batch
schedulers (:mod:`skearly.inference`) decide *which* rows go through *which*
layer when, and call :meth:`ExitPass.advance` for each layer call.

The pass talks to the network only through the layer-runner interface of
:mod:`skearly.inference` (``embed``, ``layer_context``, ``run_layer``,
``exit_logits``, ``exit_layers``, ``n_layers_used``, ``n_classes``), so every
backend and encoder family runs through the same code.

Device traffic is kept small, so that the host keeps feeding an accelerator
(:mod:`skearly._utils.host_syncs` counts what would block it):

* row lengths are known on the host from tokenization, so which rows are
  padded, how far to trim and which rows to keep are host decisions; index
  vectors go to the device without blocking (:func:`~skearly._utils.devices.to_device`);
* each group carries its 2-D mask on the device only where some row is padded
  (``None`` otherwise: the host knows from the lengths, so a batch-1 row never
  slices one), and its layer context (the attention mask of the layers) is
  built once per group, with no mask at all when no row is padded;
* input rows are embedded in windows of at least :data:`EMBED_WINDOW_ROWS` rows
  (:meth:`ExitPass.embedded`), however small the batch size: embeddings are per
  token, so a window gives each row the same hidden states as its own batch
  would, and at batch size 1 the per-row cost of collating and embedding is
  shared by the window;
* the rows of a group are known on the host, so an exit is recorded by keeping
  the leaving rows' calibrated probabilities on the device, beside their host row
  numbers and exit layer; they are gathered and copied back once, at the end of the
  pass (:meth:`ExitPass.results`). The one transfer per exit head is the boolean
  "leaving" vector, which the host needs to know which rows go on (none after the
  last head).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from skearly._utils.batching import Encoded, sorted_batches
from skearly._utils.devices import to_device, to_host
from skearly._utils.rounding import round_up
from skearly.exit_criteria import ExitCriterion

__all__ = ["RowGroup", "ExitPass", "EmbeddedBatch", "EMBED_WINDOW_ROWS"]

#: Input rows collated and embedded in one call when the batch size is smaller (a multiple of it).
EMBED_WINDOW_ROWS = 64


#: The layer context of a group not built yet (``None`` is a valid context: no mask needed).
_UNBUILT: Any = object()


@dataclass
class EmbeddedBatch:
    """An input batch of dataset rows, embedded: what enters layer 0 (see :meth:`ExitPass.embedded`).

    Parameters
    ----------
    rows : ndarray of int64, shape (n,)
        Dataset row indices (host copy).
    lengths : ndarray of int64, shape (n,)
        Token count of each row (host copy).
    hidden : torch.Tensor of shape (n, width, hidden_size)
        Embeddings, padded to ``width``: the longest row rounded up to the length multiple
        (a view into its window's embeddings: the first layer reads it as it is).
    mask : torch.Tensor of shape (n, width) or None
        Attention mask (1 = token, 0 = padding), on the device; ``None`` when no row
        is padded (every row's length is ``width``).
    """

    rows: np.ndarray
    lengths: np.ndarray
    hidden: torch.Tensor
    mask: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class RowGroup:
    """Rows of the dataset waiting for, or going through, the same layer.

    Parameters
    ----------
    rows : ndarray of int64, shape (n,)
        Dataset row indices, aligned with the hidden states (host copy).
    lengths : ndarray of int64, shape (n,)
        Number of real (non-padding) tokens of each row (host copy).
    hidden : torch.Tensor of shape (n, width, hidden_size)
        Hidden states, padded to ``width >= lengths.max()``.
    mask : torch.Tensor of shape (n, width) or None
        Attention mask (1 = token, 0 = padding), on the device; ``None`` means no
        row is padded (a group that has one may still carry it after exits).
    state : torch.Tensor or None
        The exit criterion's per-row state.
    length_multiple : int, default=1
        Every width this group or its parts take is a multiple of it.
    origins : ndarray of int64, shape (n,), or None
        Input batch each row came in with (host copy; ``None``: all the same).
    bounds : ndarray of int64, shape (n,), or None
        Widest padded width each row would have at this point had its input batch
        run on its own, exits trimming it (host copy): a scheduler that never puts
        a row in a wider layer call pads no more than :class:`ShrinkingScheduler`.
    """

    rows: np.ndarray
    lengths: np.ndarray
    hidden: torch.Tensor
    mask: torch.Tensor | None
    state: torch.Tensor | None
    length_multiple: int = 1
    origins: np.ndarray | None = None
    bounds: np.ndarray | None = None
    context: Any = field(default=_UNBUILT, repr=False)  # the runner's layer context, built once for this group
    _padded: bool | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        """Padded length of the hidden states."""
        return int(self.hidden.shape[1])

    def padded(self) -> bool:
        """Whether some row is shorter than :attr:`width` (decided on the host, once: layers keep the width)."""
        if self._padded is None:
            self._padded = self.mask is not None and bool((self.lengths < self.width).any())
        return self._padded

    def head_mask(self) -> torch.Tensor | None:
        """The 2-D mask where some row is padded, else ``None`` (what exit heads and layer contexts take)."""
        return self.mask if self.padded() else None

    def _trimmed_width(self, lengths: np.ndarray) -> int:
        return min(self.width, round_up(int(lengths.max()), self.length_multiple))

    def subset(self, index: np.ndarray) -> RowGroup:
        """The rows at positions ``index``, with padding no longer needed trimmed away.

        The width is cut to the longest remaining row, rounded up to
        :attr:`length_multiple`. The index goes to the device without blocking the host.
        """
        lengths = self.lengths[index]
        width = self._trimmed_width(lengths)
        keep = to_device(np.asarray(index, dtype=np.int64), self.hidden.device)
        return RowGroup(
            rows=self.rows[index],
            lengths=lengths,
            hidden=self.hidden.index_select(0, keep)[:, :width],
            mask=None if self.mask is None else self.mask.index_select(0, keep)[:, :width],
            state=None if self.state is None else self.state.index_select(0, keep),
            length_multiple=self.length_multiple,
            origins=None if self.origins is None else self.origins[index],
            bounds=None if self.bounds is None else self.bounds[index],
        )

    def split(self, n: int) -> tuple[RowGroup, RowGroup]:
        """The first ``n`` rows and the rest (views, no copy), each trimmed to a multiple of :attr:`length_multiple`."""
        return self._slice(slice(0, n)), self._slice(slice(n, len(self)))

    def _slice(self, rows: slice) -> RowGroup:
        lengths = self.lengths[rows]
        width = self._trimmed_width(lengths)
        return RowGroup(
            rows=self.rows[rows],
            lengths=lengths,
            hidden=self.hidden[rows, :width],
            mask=None if self.mask is None else self.mask[rows, :width],
            state=None if self.state is None else self.state[rows],
            length_multiple=self.length_multiple,
            origins=None if self.origins is None else self.origins[rows],
            bounds=None if self.bounds is None else self.bounds[rows],
        )

    def widened(self, width: int) -> RowGroup:
        """The same rows padded with zeros (hidden states and mask) to ``width >= self.width``."""
        if width == self.width:
            return self
        return RowGroup(
            self.rows,
            self.lengths,
            _pad(self.hidden, width),
            _pad(self._mask_tensor(), width),
            self.state,
            self.length_multiple,
            self.origins,
            self.bounds,
        )

    def _mask_tensor(self) -> torch.Tensor:
        """The 2-D mask, built (all ones) where the group carries none."""
        if self.mask is not None:
            return self.mask
        return torch.ones((len(self), self.width), dtype=torch.int64, device=self.hidden.device)

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
            mask=None if all(g.mask is None for g in wide) else torch.cat([g._mask_tensor() for g in wide]),
            state=None if states[0] is None else torch.cat(states),
            length_multiple=groups[0].length_multiple,
            origins=_concat_or_none([g.origins for g in groups]),
            bounds=_concat_or_none([g.bounds for g in groups]),
        )

    def trim_bounds(self) -> None:
        """Lower each row's :attr:`bounds` to the width its input batch's rows in this group need (after exits)."""
        if self.bounds is None or self.origins is None:
            return
        longest = np.zeros(int(self.origins.max()) + 1, dtype=np.int64)
        np.maximum.at(longest, self.origins, self.lengths)
        needed = np.minimum(round_up(longest[self.origins], self.length_multiple), self.width)
        self.bounds = np.minimum(self.bounds, needed)


def _concat_or_none(arrays: Sequence[np.ndarray | None]) -> np.ndarray | None:
    return None if any(a is None for a in arrays) else np.concatenate(arrays)


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
        # one 0-d tensor per head, made once (indexing a tensor per exit step would be one more op)
        self._inverse_t = list(to_device(1.0 / np.asarray(temperatures, dtype=np.float32), device).unbind())
        self._n_classes = int(runner.n_classes)
        self._n_rows = n_rows
        # the exits so far: host row numbers and exit layer, and the rows' calibrated probabilities on the device
        self._exited_rows: list[np.ndarray] = []
        self._exited_proba: list[torch.Tensor] = []
        self._exit_layers = np.zeros(n_rows, dtype=np.int64)

    def embedded(self, encoded: Encoded, batch_size: int) -> Iterator[EmbeddedBatch]:
        """The rows of ``encoded`` in length-sorted input batches of ``batch_size`` rows, embedded.

        Rows are collated, moved to the device and embedded in windows of
        :data:`EMBED_WINDOW_ROWS` rows or more (a multiple of ``batch_size``),
        then cut into the batches that :func:`~skearly._utils.batching.sorted_batches`
        gives, each trimmed to its own longest row (rounded up to
        :attr:`length_multiple`). Embeddings are computed token by token, so each
        row gets the hidden states its own batch would give it; small batch sizes
        share the fixed cost of a call.
        """
        window = round_up(max(EMBED_WINDOW_ROWS, batch_size), batch_size)
        for batch in sorted_batches(encoded, window, self.length_multiple):
            lengths = encoded.lengths()[batch.rows]
            batch = batch.to(self.device)
            hidden = self.runner.embed(batch.input_ids, batch.token_type_ids, batch.attention_mask)
            for start in range(0, len(lengths), batch_size):
                stop = min(start + batch_size, len(lengths))
                part = slice(start, stop)
                # length-sorted: the first row is the longest, the last the shortest
                width = round_up(int(lengths[start]), self.length_multiple)
                mask = batch.attention_mask[part, :width] if int(lengths[stop - 1]) < width else None
                yield EmbeddedBatch(batch.rows[part], lengths[part], hidden[part, :width], mask)

    def start(self, batch: EmbeddedBatch, origin: int | None = None) -> RowGroup:
        """The group of an embedded input batch, entering layer 0.

        Parameters
        ----------
        batch : EmbeddedBatch
            Embedded rows (from :meth:`embedded`), their width a multiple of :attr:`length_multiple`.
        origin : int or None, default=None
            Number of this input batch, for a scheduler that merges rows of several
            (see :attr:`RowGroup.bounds`); ``None`` tracks neither origins nor bounds.
        """
        state = self.criterion.start(len(batch), self.device) if self.early else None
        group = RowGroup(batch.rows, batch.lengths, batch.hidden, batch.mask, state, self.length_multiple)
        if origin is not None:
            group.origins = np.full(len(batch), origin, dtype=np.int64)
            group.bounds = np.full(len(batch), group.width, dtype=np.int64)
        return group

    def advance(self, index: int, group: RowGroup) -> RowGroup | None:
        """Run 0-based layer ``index`` on ``group``, then its exit head if one follows.

        Returns
        -------
        RowGroup or None
            The rows that go on to layer ``index + 1`` (trimmed), or ``None`` when
            none do.
        """
        if group.context is _UNBUILT:
            group.context = self.runner.layer_context(group.hidden, group.head_mask())
        group.hidden = self.runner.run_layer(index, group.hidden, group.context)
        head = self._head_after.get(index)
        if head is None:
            return group
        last = head == self._last_head
        if not last and not self.early:
            return group
        logits = self.runner.exit_logits(head, group.hidden, group.head_mask())
        if logits.dtype != torch.float32:  # autocast on CUDA; fp32 needs no call (each op costs at batch 1)
            logits = logits.float()
        proba = torch.softmax(logits * self._inverse_t[head], dim=1)  # as calibrated_head_proba
        if last:
            self._record(group.rows, proba, head)
            return None
        leaving, state = self.criterion.decide(proba, group.state, self.threshold)
        leaving = to_host(leaving)  # the one host transfer of an exit step
        n_leaving = np.count_nonzero(leaving)  # one cheap host call for "all" and "any"
        if n_leaving == len(leaving):
            self._record(group.rows, proba, head)
            return None
        group.state = state
        if not n_leaving:  # nothing to record, nothing to trim
            return group
        index = to_device(np.flatnonzero(leaving), self.device)
        self._record(group.rows[leaving], proba.index_select(0, index), head)
        group = group.subset(np.flatnonzero(~leaving))
        group.trim_bounds()
        return group

    def _record(self, rows: np.ndarray, proba: torch.Tensor, head: int) -> None:
        """Keep the exiting rows' probabilities (on the device, no transfer) and write their exit layer (host)."""
        self._exited_rows.append(rows)
        self._exited_proba.append(proba)
        self._exit_layers[rows] = self.exit_layers[head]

    def results(self) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities at each row's exit (float64) and its 1-based exit layer, copied back once.

        Raises
        ------
        RuntimeError
            If some row has not exited (a scheduler that stopped early).
        """
        proba = np.zeros((self._n_rows, self._n_classes), dtype=np.float64)
        if self._exited_proba:
            proba[np.concatenate(self._exited_rows)] = to_host(torch.cat(self._exited_proba))
        if not self._exit_layers.all():
            raise RuntimeError(f"{int((self._exit_layers == 0).sum())} rows never reached an exit head.")
        return proba, self._exit_layers.copy()
