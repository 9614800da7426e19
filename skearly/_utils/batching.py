"""Tokenize once, then cut the token lists into padded batches (random for training, length-sorted for inference)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import torch

from skearly._utils.devices import to_device
from skearly._utils.rounding import round_up


@dataclass
class Encoded:
    """Token ids of a whole dataset, unpadded: one list of ids (and token types) per row."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    pad_token_id: int
    _flat_cache: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> np.ndarray:
        """Number of tokens of each row."""
        return self._flat()[0]

    def _flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Row lengths, row offsets, and every row's ids (and token types) end to end: built once, then reused."""
        if self._flat_cache is None:
            lengths = np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self))
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(self) else lengths
            ids = np.fromiter(chain.from_iterable(self.input_ids), dtype=np.int64, count=int(lengths.sum()))
            types = None
            if self.token_type_ids is not None:
                types = np.fromiter(chain.from_iterable(self.token_type_ids), dtype=np.int64, count=len(ids))
            self._flat_cache = (lengths, offsets, ids, types)
        return self._flat_cache


@dataclass
class Batch:
    """A padded batch of rows ``rows`` (indices into the dataset)."""

    rows: np.ndarray
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor | None

    def to(self, device: torch.device) -> Batch:
        """The same batch on ``device`` (copied without blocking the host: pinned memory on CUDA)."""
        move = lambda t: None if t is None else to_device(t, device)  # noqa: E731
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
            out = _tokenize_single(tokenizer, list(first), max_length)
        else:
            out = _encode(tokenizer, list(first), max_length, pairs=list(second))
    return Encoded(out["input_ids"], out.get("token_type_ids"), tokenizer.pad_token_id or 0)


#: Per fast tokenizer, per ``max_length``: a copy of its backend set to truncate there and never pad.
_TRUNCATING_BACKENDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _truncating_backend(tokenizer, max_length: int) -> Any:
    """A ``tokenizers.Tokenizer`` copy of a fast tokenizer's backend, truncating as ``tokenizer(...)`` would.

    Made once per tokenizer and ``max_length`` and never changed afterwards (the
    tokenizer's own backend is reconfigured by every call). ``None`` for a slow tokenizer.
    """
    if not getattr(tokenizer, "is_fast", False):
        return None
    per_length = _TRUNCATING_BACKENDS.setdefault(tokenizer, {})
    backend = per_length.get(max_length)
    if backend is None:
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.no_padding()
        backend.enable_truncation(max_length, stride=0, strategy="longest_first", direction=tokenizer.truncation_side)
        backend.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
        per_length[max_length] = backend
    return backend


def _encode(
    tokenizer, texts: list[str], max_length: int, pairs: list[str] | None = None, offsets: bool = False
) -> dict[str, list]:
    """What ``tokenizer(texts[, pairs], truncation=..., max_length=max_length)`` returns that skearly uses.

    The ids, the token types where the tokenizer returns them, and the character
    offsets if asked. A fast tokenizer's backend is called directly (a truncating
    copy of it), which skips the Python work of ``tokenizer(...)`` (building
    attention masks and a ``BatchEncoding``): a fixed cost per call that shows when
    ``predict`` is called on a few texts at a time. Slow tokenizers are called as usual.
    """
    backend = _truncating_backend(tokenizer, max_length)
    if backend is None:
        extra = {"return_offsets_mapping": True} if offsets else {}
        if pairs is None:
            return dict(tokenizer(texts, truncation=True, max_length=max_length, **extra))
        return dict(tokenizer(texts, pairs, truncation="longest_first", max_length=max_length, **extra))
    inputs = texts if pairs is None else list(zip(texts, pairs, strict=True))
    encode = backend.encode_batch if offsets else getattr(backend, "encode_batch_fast", backend.encode_batch)
    encodings = encode(inputs)
    out = {"input_ids": [encoding.ids for encoding in encodings]}
    if "token_type_ids" in tokenizer.model_input_names:
        out["token_type_ids"] = [encoding.type_ids for encoding in encodings]
    if offsets:
        out["offset_mapping"] = [encoding.offsets for encoding in encodings]
    return out


#: Characters per kept token of the prefixes tried in turn before a long text is tokenized whole: English
#: runs at about 4-5 characters a token, so the first nearly always holds every token truncation keeps,
#: and the second catches most of the rest (long words, numbers, URLs).
_PREFIX_CHARS_PER_TOKEN = (6, 12)


def _tokenize_single(tokenizer, texts: list[str], max_length: int) -> dict[str, list]:
    """``tokenizer(texts, truncation=True, max_length=max_length)``, without tokenizing what truncation drops.

    A fast tokenizer encodes a whole text before truncating it, so a long article
    costs its full length. A text longer than ``max_length * c`` characters, for
    each ``c`` of ``_PREFIX_CHARS_PER_TOKEN`` in turn, is tokenized from that prefix
    instead; the result is kept only when it provably equals the full text's:
    truncation cut it (the prefix had more tokens than are kept) and every kept
    token ends before the prefix's last run of spaces, so it comes from words the
    cut did not touch (a plain space separates words in every supported tokenizer
    family). The texts no prefix serves (no whitespace, very long tokens) are
    tokenized whole. Slow tokenizers, which give no offsets, always tokenize whole texts.
    """
    if not getattr(tokenizer, "is_fast", False):
        return _encode(tokenizer, texts, max_length)
    pending = list(range(len(texts)))  # rows not tokenized yet
    served: dict[int, dict[str, list]] = {}  # row -> its tokenizer outputs
    keys: list[str] = []
    for chars_per_token in _PREFIX_CHARS_PER_TOKEN:
        limit = max_length * chars_per_token
        long = [i for i in pending if len(texts[i]) > limit]
        if not long:
            break
        prefixes = [texts[i][:limit] for i in long]
        cut = _encode(tokenizer, prefixes, max_length, offsets=True)
        offsets = cut.pop("offset_mapping")
        keys = list(cut)
        for j, (i, prefix) in enumerate(zip(long, prefixes)):
            if _prefix_is_exact(prefix, cut["input_ids"][j], offsets[j], max_length):
                served[i] = {key: cut[key][j] for key in keys}
        pending = [i for i in pending if i not in served]
    if not served:
        return _encode(tokenizer, texts, max_length)
    # the short texts and the long ones no prefix served are tokenized whole, in one call
    whole = _encode(tokenizer, [texts[i] for i in pending], max_length) if pending else {}
    out: dict[str, list] = {key: [None] * len(texts) for key in keys}
    for key in keys:
        column = out[key]
        for j, i in enumerate(pending):
            column[i] = whole[key][j]
        for i, row in served.items():
            column[i] = row[key]
    return out


def _prefix_is_exact(prefix: str, ids: list[int], offsets: list[tuple[int, int]], max_length: int) -> bool:
    """Whether the truncated tokens of ``prefix`` are those of the whole text it was cut from (see above)."""
    if len(ids) < max_length:  # the prefix did not even fill max_length: the cut may have dropped kept tokens
        return False
    body = prefix.rstrip(" ")
    cut = body.rfind(" ")  # the last (maybe cut) word starts after it; only a plain space splits words everywhere
    safe = len(body[:cut].rstrip(" ")) if cut > 0 else 0
    return safe > 0 and max(end for _, end in offsets) <= safe


def collate(encoded: Encoded, rows: np.ndarray, length_multiple: int = 1) -> Batch:
    """Pad rows ``rows`` of ``encoded`` to their longest member, rounded up to a multiple of ``length_multiple``.

    Vectorised: the ids are gathered from one flat array, no Python loop over rows.
    """
    rows = np.asarray(rows, dtype=np.int64)
    all_lengths, offsets, flat_ids, flat_types = encoded._flat()
    lengths = all_lengths[rows]
    width = round_up(int(lengths.max()), length_multiple)
    positions = np.arange(width)
    real = positions < lengths[:, None]
    source = (offsets[rows][:, None] + positions)[real]
    input_ids = np.full((len(rows), width), encoded.pad_token_id, dtype=np.int64)
    input_ids[real] = flat_ids[source]
    types = None
    if flat_types is not None:
        types = np.zeros((len(rows), width), dtype=np.int64)
        types[real] = flat_types[source]
    return Batch(
        rows,
        torch.from_numpy(input_ids),
        torch.from_numpy(real.astype(np.int64)),
        None if types is None else torch.from_numpy(types),
    )


def shuffled_batches(encoded: Encoded, batch_size: int, generator: np.random.Generator) -> Iterator[Batch]:
    """Training batches: a fresh random order, cut into ``batch_size`` rows."""
    order = generator.permutation(len(encoded))
    for start in range(0, len(order), batch_size):
        yield collate(encoded, order[start : start + batch_size])


#: Batches per mega-batch of :func:`length_grouped_batches` (as transformers' ``group_by_length``).
MEGA_BATCHES = 50


def length_grouped_batches(
    encoded: Encoded, batch_size: int, generator: np.random.Generator, mega_batches: int = MEGA_BATCHES
) -> Iterator[Batch]:
    """Training batches of rows of similar length, in a random order: far less padding than random batches.

    A fresh random order of the rows is cut into mega-batches of
    ``mega_batches * batch_size`` rows; each is sorted by length (longest
    first), cut into batches of ``batch_size`` rows, and all batches are then
    visited in a random order. Every row still appears once per call, each
    batch is a random draw of similar-length rows, and the order depends only
    on ``generator``.

    Parameters
    ----------
    encoded : Encoded
        Tokenized rows.
    batch_size : int
        Rows per batch (the last batch of a mega-batch may be smaller).
    generator : numpy.random.Generator
        Source of the row and batch orders.
    mega_batches : int, default=MEGA_BATCHES
        Batches per length-sorted group; 1 sorts only within a batch, which changes nothing.

    Yields
    ------
    Batch
        Padded to its longest row.
    """
    order = generator.permutation(len(encoded))
    lengths = encoded.lengths()
    span = batch_size * mega_batches
    batches = []
    for start in range(0, len(order), span):
        group = order[start : start + span]
        group = group[np.argsort(-lengths[group], kind="stable")]
        batches.extend(group[i : i + batch_size] for i in range(0, len(group), batch_size))
    for index in generator.permutation(len(batches)):
        yield collate(encoded, batches[index])


def sorted_batches(encoded: Encoded, batch_size: int, length_multiple: int = 1) -> Iterator[Batch]:
    """Inference batches of rows of similar length (longest first), to cut padding.

    Each batch is padded to its longest row rounded up to ``length_multiple``.
    Callers put results back in the original order through ``Batch.rows``.
    """
    order = np.argsort(-encoded.lengths(), kind="stable")
    for start in range(0, len(order), batch_size):
        yield collate(encoded, order[start : start + batch_size], length_multiple)


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
