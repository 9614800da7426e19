"""Tokenize once, then cut the token lists into padded batches (random for training, length-sorted for inference)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class Encoded:
    """Token ids of a whole dataset, unpadded: one list of ids (and token types) per row."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    pad_token_id: int

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> np.ndarray:
        """Number of tokens of each row."""
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self))


@dataclass
class Batch:
    """A padded batch of rows ``rows`` (indices into the dataset)."""

    rows: np.ndarray
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor | None

    def to(self, device: torch.device) -> Batch:
        """The same batch on ``device``."""
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(self.rows, move(self.input_ids), move(self.attention_mask), move(self.token_type_ids))


# A Hugging Face fast tokenizer keeps its truncation settings in mutable state that each call
# sets: two threads sharing one tokenizer with different ``max_length`` would silently truncate
# with each other's setting (or fail with "Already borrowed"). Tokenization is serialised.
_TOKENIZER_LOCK = threading.Lock()


def tokenize(tokenizer, first: Sequence[str], second: Sequence[str] | None, max_length: int) -> Encoded:
    """Tokenize single texts (``second is None``) or text pairs, truncating to ``max_length`` tokens.

    Thread-safe: calls are serialised by a lock, since the tokenizer's truncation
    settings are shared mutable state.
    """
    if second is not None and max_length < tokenizer.num_special_tokens_to_add(pair=True):
        needed = tokenizer.num_special_tokens_to_add(pair=True)
        raise ValueError(
            f"max_length={max_length} is too small for text pairs: the tokenizer adds {needed} special tokens "
            f"to each pair, so max_length must be at least {needed}."
        )
    with _TOKENIZER_LOCK:
        if second is None:
            out = tokenizer(list(first), truncation=True, max_length=max_length)
        else:
            out = tokenizer(list(first), list(second), truncation="longest_first", max_length=max_length)
    return Encoded(out["input_ids"], out.get("token_type_ids"), tokenizer.pad_token_id or 0)


def collate(encoded: Encoded, rows: np.ndarray) -> Batch:
    """Pad rows ``rows`` of ``encoded`` to their longest member."""
    ids = [encoded.input_ids[i] for i in rows]
    length = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), length), encoded.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), length), dtype=torch.long)
    types = None if encoded.token_type_ids is None else torch.zeros((len(ids), length), dtype=torch.long)
    for k, (row, seq) in enumerate(zip(rows, ids, strict=True)):
        input_ids[k, : len(seq)] = torch.as_tensor(seq)
        mask[k, : len(seq)] = 1
        if types is not None:
            types[k, : len(seq)] = torch.as_tensor(encoded.token_type_ids[row])
    return Batch(np.asarray(rows), input_ids, mask, types)


def shuffled_batches(encoded: Encoded, batch_size: int, generator: np.random.Generator) -> Iterator[Batch]:
    """Training batches: a fresh random order, cut into ``batch_size`` rows."""
    order = generator.permutation(len(encoded))
    for start in range(0, len(order), batch_size):
        yield collate(encoded, order[start : start + batch_size])


def sorted_batches(encoded: Encoded, batch_size: int) -> Iterator[Batch]:
    """Inference batches of rows of similar length (longest first), to cut padding.

    Callers put results back in the original order through ``Batch.rows``.
    """
    order = np.argsort(-encoded.lengths(), kind="stable")
    for start in range(0, len(order), batch_size):
        yield collate(encoded, order[start : start + batch_size])


def n_batches(n_rows: int, batch_size: int) -> int:
    """Number of batches of at most ``batch_size`` rows."""
    return -(-n_rows // batch_size)


def pack_calibration_inputs(encoded: Encoded, y: np.ndarray) -> dict[str, Any]:
    """The calibration split as plain arrays (what ``calibration_inputs_`` holds; saved by ``save``).

    Parameters
    ----------
    encoded : Encoded
        The calibration rows, tokenized.
    y : ndarray of shape (n_rows,)
        Their integer class indices.

    Returns
    -------
    dict
        ``input_ids`` (int32), ``attention_mask`` (int8) and ``token_type_ids``
        (int32, or ``None`` when the tokenizer gives none), each of shape
        ``(n_rows, width)`` padded on the right to the longest row; ``labels``
        (int64, shape ``(n_rows,)``); ``pad_token_id`` (int).
    """
    lengths = encoded.lengths()
    width = int(lengths.max()) if len(encoded) else 0
    ids = np.full((len(encoded), width), encoded.pad_token_id, dtype=np.int32)
    mask = np.zeros((len(encoded), width), dtype=np.int8)
    types = None if encoded.token_type_ids is None else np.zeros((len(encoded), width), dtype=np.int32)
    for row, (tokens, length) in enumerate(zip(encoded.input_ids, lengths, strict=True)):
        ids[row, :length] = tokens
        mask[row, :length] = 1
        if types is not None:
            types[row, :length] = encoded.token_type_ids[row]
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": types,
        "labels": np.asarray(y, dtype=np.int64),
        "pad_token_id": int(encoded.pad_token_id),
    }


def unpack_calibration_inputs(inputs: Mapping[str, Any]) -> tuple[Encoded, np.ndarray]:
    """Inverse of :func:`pack_calibration_inputs`: the tokenized rows (unpadded) and their labels.

    Parameters
    ----------
    inputs : mapping
        As returned by :func:`pack_calibration_inputs`.

    Returns
    -------
    encoded : Encoded
    labels : ndarray of shape (n_rows,), int64

    Raises
    ------
    ValueError
        When a key is missing.
    """
    missing = {"input_ids", "attention_mask", "labels", "pad_token_id"} - set(inputs)
    if missing:
        raise ValueError(f"calibration inputs lack {sorted(missing)}: refit the model to store them again.")
    keep = np.asarray(inputs["attention_mask"]).astype(bool)
    ids = [row[used].tolist() for row, used in zip(np.asarray(inputs["input_ids"]), keep, strict=True)]
    types = inputs.get("token_type_ids")
    if types is not None:
        types = [row[used].tolist() for row, used in zip(np.asarray(types), keep, strict=True)]
    return Encoded(ids, types, int(inputs["pad_token_id"])), np.asarray(inputs["labels"], dtype=np.int64)
