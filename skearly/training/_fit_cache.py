"""The expensive half of ``fit`` as a pure function of (data, fit-time parameters), optionally cached on disk.

:func:`fit_network` tokenizes, fine-tunes and calibrates, and returns a
picklable :class:`FitResult`. :func:`cached_fit_network` runs it through a
:class:`joblib.Memory` when the estimator has ``memory`` set, so that a
``GridSearchCV`` over predict-time parameters (``threshold``,
``exit_criterion``, ...) fine-tunes once per training fold instead of once per
candidate.

The cache key is everything that can change the fitted network: the training
texts (or pairs) and labels, every fit-time parameter, the torch device type
and an identity of the encoder files (name, size and modification time of each
file of the model folder), so that editing the encoder in place invalidates the
cache. Predict-time parameters (``threshold``, ``exit_criterion``,
``predict_batch_size``, ``target_speedup``, ``verbose``) and ``memory`` itself
are never part of the key. Only seeded fits (``random_state`` an int) are cached
(``EarlyExitTextClassifier.fit`` sees to it): an unseeded fit is not
reproducible, so serving it from a cache would be wrong.
"""

from __future__ import annotations

import copy
import os
import pickle
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_memory

from skearly._utils.batching import Encoded, pack_calibration_inputs, tokenize
from skearly._utils.devices import autocast
from skearly._utils.lru import BoundedLRU
from skearly.calibration import calibrate_heads, calibrated_head_proba
from skearly.encoders import check_tokenizer
from skearly.network import MultiExitNetwork, all_head_logits
from skearly.objectives import SummedCrossEntropy, TrainingObjective
from skearly.training._loop import TrainingConfig, train_jointly

__all__ = [
    "FitParams",
    "FitResult",
    "fit_network",
    "cached_fit_network",
    "encoder_identity",
    "load_encoder_files",
    "resolve_memory",
    "RecentFits",
    "RECENT_FITS",
]


@dataclass(frozen=True)
class FitParams:
    """Every estimator parameter that changes the fitted network (the cache key, with the data)."""

    encoder_path: str
    encoder_identity: tuple[tuple[str, int, int], ...]
    head_layers: tuple[int, ...]
    max_length: int
    batch_size: int
    epochs: int
    learning_rate: float
    weight_decay: float
    warmup_ratio: float
    calibration_size: float
    pooling: str
    dropout: float
    seed: int
    device_type: str
    mixed_precision: bool
    objective: TrainingObjective = SummedCrossEntropy()
    head_learning_rate: float | None = None
    max_grad_norm: float | None = None
    group_by_length: bool = True
    #: The dtype fine-tuning computes in (:func:`skearly._utils.devices.training_precision`), resolved on the machine.
    training_precision: str = "float32"


@dataclass
class FitResult:
    """What :func:`fit_network` computes: the fine-tuned network and everything fitted with it.

    Pickling keeps the network as a CPU state dict plus its architecture (the
    encoder config), so a result read back from the cache is rebuilt exactly.
    The whole state goes into one bytes object written by the standard (C)
    pickler: joblib's own unpickler is pure Python and would be several times
    slower on the tokenizer's many small objects.
    """

    classes: np.ndarray
    n_layers: int
    head_layers: tuple[int, ...]
    network: MultiExitNetwork
    tokenizer: Any
    temperatures: np.ndarray
    calibration_report: pd.DataFrame
    calibration_proba: np.ndarray
    loss_curve: list[float]
    #: The calibration split's tokens and labels (:func:`skearly._utils.batching.pack_calibration_inputs`).
    calibration_inputs: dict[str, Any]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        state["network"] = state["network"].snapshot()
        return state

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return _restore_fit_result, (pickle.dumps(self.__getstate__(), protocol=pickle.HIGHEST_PROTOCOL),)


def _restore_fit_result(blob: bytes) -> FitResult:
    """Inverse of :meth:`FitResult.__reduce__`."""
    state = pickle.loads(blob)
    state["network"] = MultiExitNetwork.from_snapshot(state["network"])
    result = FitResult.__new__(FitResult)
    vars(result).update(state)
    return result


def encoder_identity(path: str) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time (ns) of every file of the encoder folder.

    A model name from the local Hugging Face cache is looked up in that cache
    (offline); its snapshot folder is then described the same way (its path holds
    the model's revision). An empty tuple when no folder can be found.
    """
    folder = Path(path)
    identity: tuple[tuple[str, int, int], ...] = ()
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(path, local_files_only=True))
        except Exception:  # any lookup failure: fall back to the name alone
            return ()
        identity = ((str(folder), 0, 0),)  # the snapshot folder's name is the model's revision
    entries = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file():  # follows symlinks (the HF cache links snapshot files to blobs)
            stat = entry.stat()
            entries.append((entry.name, int(stat.st_size), int(stat.st_mtime_ns)))
    return identity + tuple(entries)


def load_encoder_files(path: str, *, tokenizer: bool = True) -> tuple[Any, Any]:
    """The tokenizer (``None`` unless ``tokenizer``) and config of a local encoder.

    Raises a ``ValueError`` saying that nothing is downloaded when they are not found locally,
    or when the tokenizer's vocabulary is trivial (:func:`skearly.encoders.check_tokenizer`).
    """
    from transformers import AutoTokenizer

    try:
        loaded = AutoTokenizer.from_pretrained(path, local_files_only=True) if tokenizer else None
        config = MultiExitNetwork.load_config(path)
    except OSError as exc:
        raise ValueError(
            f"encoder {path!r} was not found locally. skearly never downloads models: pass a local model "
            "folder, or None for the packaged default encoder."
        ) from exc
    if loaded is not None:
        check_tokenizer(loaded, path)
    return loaded, config


def calibration_split(y_index: np.ndarray, calibration_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and calibration rows: a stratified hold-out of ``calibration_size`` of the data."""
    rows = np.arange(len(y_index))
    if calibration_size == 0:
        return rows, rows[:0]
    n_classes = int(y_index.max()) + 1
    n_calib = int(np.ceil(calibration_size * len(rows)))
    if len(rows) - n_calib < n_classes or n_calib < 1:
        raise ValueError(
            f"Too few samples ({len(rows)}) to hold out calibration_size={calibration_size} for "
            "calibration and still train on every class; pass more data or calibration_size=0."
        )
    try:
        train, calib = train_test_split(rows, test_size=n_calib, stratify=y_index, random_state=seed)
    except ValueError:
        warnings.warn(
            "Some class is too rare for a stratified calibration split; using a random split.",
            UserWarning,
            stacklevel=4,
        )
        train, calib = train_test_split(rows, test_size=n_calib, random_state=seed)
    return np.sort(train), np.sort(calib)


def fit_network(
    first: Sequence[str],
    second: Sequence[str] | None,
    y: np.ndarray,
    params: FitParams,
    *,
    device: torch.device,
    verbose: int = 0,
) -> FitResult:
    """Fine-tune the encoder and its exit heads jointly, then calibrate each head: the expensive part of ``fit``.

    A pure function of the data and ``params`` (given a seed): the same inputs
    give the same result, which is what makes it safe to cache.

    Parameters
    ----------
    first : sequence of str
        Validated training texts (or first texts of the pairs).
    second : sequence of str or None
        Second texts of the pairs, ``None`` for single texts.
    y : ndarray of shape (n_samples,)
        Validated class labels (at least 2 classes).
    params : FitParams
        The fit-time parameters, resolved (encoder path, head layers, seed ...).
    device : torch.device
        Where to compute; must be of type ``params.device_type``.
    verbose : int, default=0
        ``> 0`` shows a progress bar over fine-tuning steps (not part of the cache key).

    Returns
    -------
    FitResult
    """
    classes, y_index = np.unique(y, return_inverse=True)
    tokenizer, config = load_encoder_files(params.encoder_path)
    train_rows, calib_rows = calibration_split(y_index, params.calibration_size, params.seed)
    encoded = tokenize(tokenizer, first, second, params.max_length)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(params.seed)
        network = MultiExitNetwork.from_pretrained(
            params.encoder_path,
            exit_layers=params.head_layers,
            n_classes=len(classes),
            dropout=params.dropout,
            pooling=params.pooling,
        ).to(device)
        log = train_jointly(
            network,
            _subset(encoded, train_rows),
            y_index[train_rows],
            TrainingConfig(
                params.epochs,
                params.batch_size,
                params.learning_rate,
                params.weight_decay,
                params.warmup_ratio,
                verbose,
                params.objective,
                params.head_learning_rate,
                params.max_grad_norm,
                params.group_by_length,
                params.training_precision,
            ),
            rng=np.random.default_rng(params.seed),
            device=device,
        )
    # calibration logits in training-sized batches: a fit-time parameter, so the result stays a function of the key
    with torch.inference_mode(), autocast(device, params.mixed_precision):
        calib_logits = all_head_logits(network.eval(), _subset(encoded, calib_rows), params.batch_size, device)
    calib_y = y_index[calib_rows]
    temperatures, report = calibrate_heads(calib_logits, calib_y, params.head_layers, stacklevel=4)
    return FitResult(
        classes=classes,
        n_layers=int(config.num_hidden_layers),
        head_layers=params.head_layers,
        network=network,
        tokenizer=tokenizer,
        temperatures=temperatures,
        calibration_report=report,
        calibration_proba=calibrated_head_proba(calib_logits, temperatures),
        loss_curve=log.losses,
        calibration_inputs=pack_calibration_inputs(_subset(encoded, calib_rows), calib_y),
    )


def cached_fit_network(
    memory: Any,
    first: list[str],
    second: list[str] | None,
    y: np.ndarray,
    params: FitParams,
    *,
    device: torch.device,
    verbose: int = 0,
) -> tuple[FitResult, bool, str | None]:
    """:func:`fit_network`, through ``memory``: ``None``, a cache folder or a joblib.Memory-like object.

    Returns
    -------
    result : FitResult
    from_cache : bool
        Whether the result was read from the cache rather than computed.
    key : str or None
        The cache key of the result in a cache folder (the same key always gives the
        same fitted network); ``None`` without one.
    """
    memory = resolve_memory(memory)
    if memory is None or getattr(memory, "location", "") is None:  # joblib.Memory(None) caches nothing
        return fit_network(first, second, y, params, device=device, verbose=verbose), False, None
    cached = memory.cache(fit_network, ignore=["device", "verbose"])
    location = getattr(memory, "location", None)
    # object arrays, not lists: joblib writes repr() of the arguments next to each entry, in full for a list
    first = _object_array(first)
    second = None if second is None else _object_array(second)
    on_disk = isinstance(location, str | os.PathLike)
    key = joblib.hash((os.fspath(location), first, second, y, params)) if on_disk else None
    recent = RECENT_FITS.get(key) if on_disk else None
    if recent is not None:  # another candidate of this fold already read or computed it in this process
        return recent, True, key
    # one fit per key at a time, so parallel candidates of one fold (GridSearchCV(n_jobs=...)) wait for the
    # first fine-tune and then read it, instead of all fine-tuning the same fold at once
    lock = _key_lock(location, (first, second, y, params)) if on_disk else nullcontext()
    with lock:
        check = getattr(cached, "check_call_in_cache", None)
        from_cache = bool(check(first, second, y, params, device=device)) if check is not None else False
        result = cached(first, second, y, params, device=device, verbose=verbose)
    if on_disk:
        RECENT_FITS.put(key, result)
    return result, from_cache, key


class RecentFits:
    """A small in-process LRU in front of the disk cache: fit results by cache key, handed out as copies.

    ``GridSearchCV`` over predict-time parameters fits every candidate on every
    fold (candidates in the outer loop, folds in the inner one), so without it
    each candidate reads the fold's fine-tuned network back from disk and
    rebuilds it. Here the first read (or the fine-tune itself) of a key is kept
    in memory and later candidates of the same process get a deep copy of it:
    estimators never share a network, so changing one fitted estimator's
    weights cannot leak into another one (or into the cache). The tokenizer is
    shared: :func:`skearly._utils.batching.tokenize` serialises its use.

    Bounded both by entry count (``max_entries``) and by the total size of the
    networks' weights (``max_bytes``); the least recently used entries leave
    first, but the newest entry always stays. Thread-safe. A disk entry removed
    by hand (``memory.clear()``) may still be served from here until it is evicted
    or :meth:`clear` is called.

    Parameters
    ----------
    max_entries : int
        Most results kept (at least the number of folds of a search, for it to hit); 0 turns it off.
    max_bytes : int
        Most bytes of network weights kept.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._store = BoundedLRU(max_entries, max_bytes)

    @property
    def max_entries(self) -> int:
        """Most results kept; 0 turns the layer off (settable)."""
        return self._store.max_entries

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        self._store.max_entries = value

    @property
    def hits(self) -> int:
        """How many :meth:`get` calls found their key."""
        return self._store.hits

    def get(self, key: str) -> FitResult | None:
        """An independent copy of the result stored under ``key``, or ``None``."""
        stored = self._store.get(key)
        return None if stored is None else _copy_result(stored)

    def put(self, key: str, result: FitResult) -> None:
        """Keep a copy of ``result`` under ``key``, evicting the least recently used entries over the bounds."""
        if self.max_entries < 1:
            return
        stored = _copy_result(result)
        size = sum(t.numel() * t.element_size() for t in stored.network.state_dict().values())
        self._store.put(key, stored, size)

    def clear(self) -> None:
        """Forget every entry."""
        self._store.clear()

    def __len__(self) -> int:
        return len(self._store)


def _copy_result(result: FitResult) -> FitResult:
    """A deep copy of ``result`` that shares only its tokenizer (used under a lock, never changed by skearly)."""
    state = dict(vars(result))
    tokenizer = state.pop("tokenizer")
    # field by field: deepcopy of the FitResult itself would go through __reduce__ (a full pickle round trip)
    return FitResult(tokenizer=tokenizer, **copy.deepcopy(state))


#: The process-wide in-process layer of :func:`cached_fit_network` (8 results, 2 GiB of weights at most).
RECENT_FITS = RecentFits(max_entries=8, max_bytes=2 * 2**30)


def _object_array(texts: Any) -> np.ndarray:
    array = np.empty(len(texts), dtype=object)
    array[:] = list(texts)
    return array


def resolve_memory(memory: Any) -> Any:
    """The ``memory`` parameter as a joblib.Memory-like object, or ``None`` (a ``ValueError`` for anything else)."""
    if memory is None:
        return None
    if isinstance(memory, os.PathLike):
        memory = os.fspath(memory)
    return check_memory(memory)


def _key_lock(location: str | os.PathLike[str], key: Any) -> AbstractContextManager[Any]:
    """An inter-process lock on one cache key inside the memory's folder (a no-op without ``filelock``)."""
    try:
        from filelock import FileLock
    except ImportError:  # pragma: no cover -- filelock comes with transformers (huggingface_hub)
        return nullcontext()
    folder = Path(location) / "skearly-locks"
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / f"{joblib.hash(key)}.lock"))


def _subset(encoded: Encoded, rows: np.ndarray) -> Encoded:
    types = None if encoded.token_type_ids is None else [encoded.token_type_ids[i] for i in rows]
    return Encoded([encoded.input_ids[i] for i in rows], types, encoded.pad_token_id)
