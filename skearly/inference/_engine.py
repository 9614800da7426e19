"""The inference engine: tokenized chunks -> batch scheduler -> layer runner -> exit criterion.

:class:`InferenceEngine` is the one place where fitted models are run, for
``predict`` / ``predict_proba`` (each row leaves at its own exit) and for
``exit_curve`` (every head's probabilities from one pass, to replay any
threshold with :func:`simulate_exits`). It

1. tokenizes the input in chunks of :attr:`InferenceEngine.chunk_size` rows (memory stays bounded;
   on CUDA the next chunk is tokenized on a thread while the device runs the current one);
2. cuts each chunk into length-sorted padded batches;
3. hands them to a batch scheduler (:mod:`skearly.inference`), which calls
4. the layer runner of an inference backend (:mod:`skearly.inference`) through an
   :class:`~skearly.inference._layer_pass.ExitPass`, where
5. the exit criterion (:mod:`skearly.exit_criteria`) decides after each head which rows leave.

On CUDA the engine picks the scaled-dot-product attention kernels itself
(flash / memory-efficient / math, never cuDNN's, which plans anew for every
new shape of a shrinking batch) and rounds padded widths up to a multiple of 8,
so a layer loop over changing shapes never stalls on per-shape planning.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from skearly._utils.batching import Encoded, n_batches, tokenize
from skearly._utils.devices import autocast
from skearly.calibration import calibrated_head_proba
from skearly.exit_criteria import ExitCriterion
from skearly.inference._layer_pass import EmbeddedBatch, ExitPass
from skearly.inference._schedulers import BatchScheduler
from skearly.network import all_head_logits

__all__ = ["InferenceEngine", "simulate_exits", "DEFAULT_CHUNK_SIZE"]

#: Rows tokenized at once: bounds memory on big inputs.
DEFAULT_CHUNK_SIZE = 8192
#: Padded widths on CUDA are rounded up to a multiple of this (fewer distinct shapes).
_CUDA_LENGTH_MULTIPLE = 8


@dataclass
class InferenceEngine:
    """Runs a fitted multi-exit network over texts: early-exit predictions, or every head's probabilities.

    Parameters
    ----------
    runner : object
        The layer runner: the fitted :class:`~skearly.network.MultiExitNetwork`
        on ``device``, or what an inference backend made of it.
    tokenizer : transformers.PreTrainedTokenizerBase
        The encoder's tokenizer.
    temperatures : ndarray of shape (n_heads,)
        Fitted temperature of each exit head.
    max_length : int
        Maximum tokens per text or pair.
    batch_size : int
        Rows per layer call.
    device : torch.device
        Where to compute.
    scheduler : BatchScheduler
        Which rows go through which layer when.
    mixed_precision : bool, default=False
        bf16/fp16 autocast on CUDA.
    verbose : int, default=0
        ``> 0`` shows a progress bar over input batches.
    chunk_size : int, default=DEFAULT_CHUNK_SIZE
        Rows tokenized at once.
    choose_attention_kernels : bool, default=True
        On CUDA, restrict scaled-dot-product attention to the flash,
        memory-efficient and math kernels (``False`` leaves torch's default
        choice, cuDNN included: only for comparison).
    length_multiple : int or None, default=None
        Round padded widths up to a multiple of this; ``None`` means 8 on CUDA
        (fewer distinct shapes) and 1 elsewhere.
    tokenize_ahead : bool or None, default=None
        Tokenize the next chunk on a thread while the current one runs through
        the layers. ``None`` means on CUDA only: there the host is otherwise idle
        while the device computes, whereas on a CPU the thread would take cores
        from torch's own threads.
    """

    runner: Any
    tokenizer: Any
    temperatures: np.ndarray
    max_length: int
    batch_size: int
    device: torch.device
    scheduler: BatchScheduler
    mixed_precision: bool = False
    verbose: int = 0
    chunk_size: int = DEFAULT_CHUNK_SIZE
    choose_attention_kernels: bool = True
    length_multiple: int | None = None
    tokenize_ahead: bool | None = None

    def predict(
        self, first: Sequence[str], second: Sequence[str] | None, criterion: ExitCriterion, threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities at each row's exit head, and that head's 1-based encoder layer.

        Parameters
        ----------
        first : sequence of str
            Validated texts (or first texts of pairs).
        second : sequence of str or None
            Second texts of pairs, ``None`` for single texts.
        criterion : ExitCriterion
            The exit rule.
        threshold : float
            Passed to the criterion; ``threshold >= 1`` runs every row to the last
            head and skips the intermediate heads altogether.

        Returns
        -------
        proba : ndarray of shape (n_rows, n_classes), float64
        exit_layers : ndarray of shape (n_rows,), int64
        """
        n_rows = len(first)
        proba = np.empty((n_rows, int(self.runner.n_classes)), dtype=np.float64)
        layers = np.empty(n_rows, dtype=np.int64)
        multiple = self.length_multiple or (_CUDA_LENGTH_MULTIPLE if self.device.type == "cuda" else 1)
        progress = tqdm(
            total=n_batches(n_rows, self.batch_size), desc="predicting", unit="batch", disable=not self.verbose
        )
        with progress, self._compute():
            for rows, encoded in self._chunks(first, second):
                exit_pass = ExitPass(
                    self.runner, criterion, threshold, self.temperatures, len(encoded), self.device, multiple
                )
                batches = _counted(exit_pass.embedded(encoded, self.batch_size), progress)
                self.scheduler.run(exit_pass, batches, self.batch_size)
                proba[rows], layers[rows] = exit_pass.results()
        return proba, layers

    def head_proba(self, first: Sequence[str], second: Sequence[str] | None) -> np.ndarray:
        """Calibrated probabilities of every exit head for every row, from one pass through all layers.

        Computed with the same float32 operations as :meth:`predict`, so exit
        decisions replayed on them (:func:`simulate_exits`) match ``predict``.

        Returns
        -------
        ndarray of shape (n_heads, n_rows, n_classes), float32
        """
        return calibrated_head_proba(self.head_logits(first, second), self.temperatures)

    def head_logits(self, first: Sequence[str], second: Sequence[str] | None) -> np.ndarray:
        """Logits of every exit head for every row (before temperature scaling), from one pass through all layers.

        Returns
        -------
        ndarray of shape (n_heads, n_rows, n_classes), float32
        """
        n_heads = len(tuple(self.runner.exit_layers))
        logits = np.empty((n_heads, len(first), int(self.runner.n_classes)), dtype=np.float32)
        with self._compute():
            for rows, encoded in self._chunks(first, second):
                logits[:, rows] = all_head_logits(self.runner, encoded, self.batch_size, self.device)
        return logits

    def _chunks(self, first: Sequence[str], second: Sequence[str] | None) -> Iterator[tuple[slice, Encoded]]:
        """The input in tokenized chunks of :attr:`chunk_size` rows, the next one tokenized ahead if asked."""

        def encode(start: int) -> tuple[slice, Encoded]:
            rows = slice(start, start + self.chunk_size)
            encoded = tokenize(self.tokenizer, first[rows], None if second is None else second[rows], self.max_length)
            encoded.lengths()  # the flat id arrays that padding gathers from, built on the same thread
            return rows, encoded

        starts = range(0, len(first), self.chunk_size)
        ahead = self.device.type == "cuda" if self.tokenize_ahead is None else self.tokenize_ahead
        if not ahead or len(starts) < 2:
            yield from map(encode, starts)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="skearly-tokenize") as pool:
            pending = pool.submit(encode, starts[0])
            for start in starts[1:]:
                current = pending.result()
                pending = pool.submit(encode, start)  # tokenized while the caller runs ``current``
                yield current
            yield pending.result()

    def _compute(self) -> ExitStack:
        """No autograd, autocast when asked, and on CUDA an explicit attention-kernel choice."""
        stack = ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(autocast(self.device, self.mixed_precision))
        if self.device.type == "cuda" and self.choose_attention_kernels:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            kernels = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
            stack.enter_context(sdpa_kernel(kernels))
        return stack


def _counted(batches: Iterator[EmbeddedBatch], progress: tqdm) -> Iterator[EmbeddedBatch]:
    """``batches``, ticking the progress bar once each."""
    for batch in batches:
        yield batch
        progress.update()


def simulate_exits(
    criterion: ExitCriterion,
    proba_per_head: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """Exit head of each row, from precomputed calibrated probabilities of every head.

    Gives the same decisions as :func:`early_exit_proba` without re-running the
    encoder, so one pass serves every threshold.

    Parameters
    ----------
    criterion : ExitCriterion
        The exit rule.
    proba_per_head : ndarray of shape (n_heads, n_rows, n_classes)
        Calibrated probabilities of every head.
    threshold : float
        The threshold to simulate.

    Returns
    -------
    ndarray of shape (n_rows,), int64
        0-based index of the head at which each row exits.
    """
    n_heads, n_rows, _ = proba_per_head.shape
    exit_head = np.full(n_rows, n_heads - 1, dtype=np.int64)
    if not criterion.exits_early(threshold):
        return exit_head
    active = np.arange(n_rows)
    state = criterion.start(n_rows, torch.device("cpu"))
    for head in range(n_heads - 1):
        proba = torch.as_tensor(proba_per_head[head, active], dtype=torch.float32)
        leaving, state = criterion.decide(proba, state, threshold)
        leaving_np = leaving.numpy()
        exit_head[active[leaving_np]] = head
        active = active[~leaving_np]
        state = None if state is None else state[~leaving]
        if len(active) == 0:
            break
    return exit_head
