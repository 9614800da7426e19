"""Pickle-free saving and loading of a fitted :class:`~skearly.EarlyExitTextClassifier`.

:meth:`EarlyExitTextClassifier.save` writes a folder that holds only data, never
code, so loading it cannot run anything (unlike pickle/joblib files):

``model.safetensors``
    The network's weights (CPU tensors), plus every fitted numeric numpy array
    (``temperatures_``, integer ``classes_`` ...) under the prefix ``__fitted__.``.
``skearly.json``
    Format version, skearly version, the estimator's parameters, the network's
    architecture (exit layers, classes, pooling, dropout) and every other fitted
    attribute (string labels with their dtype, head layers, calibration report as
    records, loss curve, fit time ...).
``encoder_config.json``
    The encoder's Hugging Face config (``config.to_dict()``).
``tokenizer/``
    The tokenizer, as written by ``tokenizer.save_pretrained``.

Saving is atomic: the files are written into a scratch folder beside ``path``,
which then replaces it by renames, so an interrupted or failed save leaves an
existing model folder as it was. Loading checks the format version, the encoder
family, and the whole fitted state against a schema (types, shapes, agreement
with the network), and reports a missing, corrupted or half-written file with a
:class:`ValueError` that names it (and the key, for the fitted state).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from skearly._utils.strategy import Registry
from skearly._version import __version__
from skearly.exit_criteria import CRITERIA
from skearly.inference import BACKENDS, SCHEDULERS
from skearly.network import MultiExitNetwork
from skearly.network.adapters import supported_model_types
from skearly.objectives import OBJECTIVES

__all__ = [
    "FORMAT_VERSION",
    "WEIGHTS_FILE",
    "METADATA_FILE",
    "CONFIG_FILE",
    "TOKENIZER_DIR",
    "save_estimator",
    "load_estimator",
]

#: Version of the folder layout written by :func:`save_estimator`.
FORMAT_VERSION = 1
#: Network weights and fitted numeric arrays.
WEIGHTS_FILE = "model.safetensors"
#: Parameters, versions and the other fitted attributes.
METADATA_FILE = "skearly.json"
#: The encoder's Hugging Face config.
CONFIG_FILE = "encoder_config.json"
#: Sub-folder holding the tokenizer files.
TOKENIZER_DIR = "tokenizer"

_FORMAT_NAME = "skearly-early-exit-classifier"
_ARRAY_PREFIX = "__fitted__."
# fitted attributes rebuilt from dedicated files, or describing the last predict call only
_NOT_SAVED = frozenset({"network_", "tokenizer_", "exit_layers_"})
# parameters that only steer ``fit``: an object there (a RandomState ...) is not saved
_FIT_ONLY_PARAMS = frozenset({"random_state", "memory"})
# strategy parameters stored as a name or as {"class", "params"} of a registered (built-in) class
_STRATEGY_PARAMS: dict[str, Registry] = {
    "exit_criterion": CRITERIA,
    "objective": OBJECTIVES,
    "scheduler": SCHEDULERS,
    "backend": BACKENDS,
}
# numpy dtypes that safetensors stores exactly (others go to the JSON file)
_SAFETENSORS_KINDS = frozenset("biuf")
_TORCH_DTYPES = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"}
)


class _Unsaveable(TypeError):
    """A value that this format cannot hold without pickle."""


# ----------------------------------------------------------------------------- encoding
def _encode(value: Any, where: str, arrays: dict[str, np.ndarray] | None) -> Any:
    """Turn ``value`` into JSON-able data, tagging the types JSON lacks.

    Numeric numpy arrays go to ``arrays`` (for the safetensors file) when it is
    given, and into the JSON data otherwise.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, (np.generic,)):
        return value if not isinstance(value, float) or math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.generic):
        return {"__numpy_scalar__": _encode(np.asarray(value), where, None)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{where}[{i}]", arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]", arrays) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _Unsaveable(f"{where} is a dict with non-string keys, which cannot be saved without pickle.")
        return {"__dict__": {k: _encode(v, f"{where}[{k!r}]", arrays) for k, v in value.items()}}
    if isinstance(value, np.ndarray):
        return _encode_array(value, where, arrays)
    if isinstance(value, pd.DataFrame):
        if not all(isinstance(c, str) for c in value.columns):
            raise _Unsaveable(f"{where} is a DataFrame with non-string column names, which cannot be saved.")
        records = [
            {k: _encode(v.item() if isinstance(v, np.generic) else v, where, None) for k, v in row.items()}
            for row in value.to_dict("records")
        ]
        return {
            "__dataframe__": {
                "columns": list(value.columns),
                "dtypes": [str(t) for t in value.dtypes],
                "records": records,
            }
        }
    raise _Unsaveable(f"{where} of type {type(value).__name__} cannot be saved without pickle.")


def _encode_array(value: np.ndarray, where: str, arrays: dict[str, np.ndarray] | None) -> dict[str, Any]:
    native = value.dtype.newbyteorder("=") if value.dtype.byteorder not in "=|" else value.dtype
    if arrays is not None and value.dtype.kind in _SAFETENSORS_KINDS and native.name in _TORCH_DTYPES:
        key = f"{_ARRAY_PREFIX}{where}"
        arrays[key] = np.ascontiguousarray(value, dtype=native)
        return {"__ndarray__": {"tensor": key, "dtype": native.str}}
    if value.dtype.kind not in "biufUSO":
        raise _Unsaveable(f"{where} is an array of dtype {value.dtype}, which cannot be saved without pickle.")
    data = [_encode(v, where, None) for v in value.ravel().tolist()]
    dtype = "object" if value.dtype.kind == "O" else value.dtype.str
    return {"__ndarray__": {"data": data, "dtype": dtype, "shape": list(value.shape)}}


def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`_encode`."""
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise ValueError(f"unexpected entry {value!r:.80}")
    (tag, content), *_ = value.items()
    if tag == "__float__":
        return float(content)
    if tag == "__tuple__":
        return tuple(_decode(v, arrays) for v in content)
    if tag == "__dict__":
        return {k: _decode(v, arrays) for k, v in content.items()}
    if tag == "__numpy_scalar__":
        return _decode(content, arrays)[()]
    if tag == "__ndarray__":
        if "tensor" in content:
            if content["tensor"] not in arrays:
                raise ValueError(f"array {content['tensor']!r} is missing from {WEIGHTS_FILE}")
            return arrays[content["tensor"]].astype(np.dtype(content["dtype"]), copy=False)
        data = [_decode(v, arrays) for v in content["data"]]
        dtype = np.dtype(content["dtype"])
        array = np.empty(len(data), dtype=object)
        array[:] = data
        return array.astype(dtype).reshape(content["shape"])
    if tag == "__dataframe__":
        records = [{k: _decode(v, arrays) for k, v in row.items()} for row in content["records"]]
        frame = pd.DataFrame.from_records(records, columns=content["columns"])
        return frame.astype(dict(zip(content["columns"], content["dtypes"], strict=True)))
    raise ValueError(f"unknown tag {tag!r}")


def _encode_strategy(name: str, value: Any) -> Any:
    """A strategy parameter (``exit_criterion``, ``objective``): its name, or the class and params of a built-in."""
    registry = _STRATEGY_PARAMS[name]
    builtins = {cls.__name__: cls for cls in registry.classes.values()}
    if isinstance(value, str):
        return value
    if type(value) in builtins.values():
        return {
            "class": type(value).__name__,
            "params": {k: _encode(v, k, None) for k, v in vars(value).items()},
        }
    raise TypeError(
        f"{name} {value!r} is a custom {type(value).__name__}: EarlyExitTextClassifier.save only "
        f"stores the built-in {registry.base.__name__} classes {sorted(builtins)} (or their names). Use joblib/pickle "
        "for a "
        f"model with a custom one, or set_params({name}=...) to a built-in one before saving."
    )


def _decode_strategy(name: str, data: Any) -> Any:
    """Inverse of :func:`_encode_strategy`."""
    builtins = {cls.__name__: cls for cls in _STRATEGY_PARAMS[name].classes.values()}
    if isinstance(data, str):
        return data
    if not isinstance(data, dict) or data.get("class") not in builtins:
        raise ValueError(f"unknown {name} {data!r:.80}")
    params = {k: _decode(v, {}) for k, v in data.get("params", {}).items()}
    return builtins[data["class"]](**params)


def _encode_params(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in params.items():
        if name in _STRATEGY_PARAMS:
            out[name] = _encode_strategy(name, value)
            continue
        if name == "memory" and hasattr(value, "location"):  # a joblib.Memory: keep its folder
            value = value.location
        try:
            out[name] = _encode(value, name, None)
        except _Unsaveable:
            if name not in _FIT_ONLY_PARAMS:
                raise TypeError(
                    f"Parameter {name}={value!r:.60} cannot be saved without pickle; set it to a plain value "
                    "(number, string, list or None) before saving, or use joblib."
                ) from None
            warnings.warn(
                f"Parameter {name}={value!r:.60} only affects fit and cannot be saved without pickle: "
                "it is saved as None.",
                UserWarning,
                stacklevel=4,
            )
            out[name] = None
    return out


def _fitted_attributes(estimator: Any) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(estimator).items()
        if name.endswith("_") and not name.startswith("_") and name not in _NOT_SAVED
    }


# ----------------------------------------------------------------------------- save / load
def save_estimator(estimator: Any, path: str | os.PathLike[str]) -> Path:
    """Write a fitted estimator to folder ``path`` without pickle.

    Parameters
    ----------
    estimator : EarlyExitTextClassifier
        A fitted estimator.
    path : str or path-like
        Folder to create (or to replace: skearly's files in it are replaced, other files kept).
        Written beside it first, then renamed into place: a failed save leaves it as it was.

    Returns
    -------
    pathlib.Path
        The folder.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    TypeError
        If a parameter or fitted attribute cannot be stored without pickle, for
        example a custom :class:`~skearly.exit_criteria.ExitCriterion` subclass.
    ValueError
        If ``path`` is an existing file.
    """
    from safetensors.torch import save_file
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "network_")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"Cannot save to {folder}: it is a file, not a folder.")
    # build everything first so that an unsaveable model writes nothing
    arrays: dict[str, np.ndarray] = {}
    attributes = {}
    for name, value in _fitted_attributes(estimator).items():
        try:
            attributes[name] = _encode(value, name, arrays)
        except _Unsaveable as exc:
            raise TypeError(f"Fitted attribute {exc}") from None
    network = estimator.network_
    metadata = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "skearly_version": __version__,
        "estimator": type(estimator).__name__,
        "params": _encode_params(estimator.get_params(deep=False)),
        "network": network.architecture(),
        "fitted": attributes,
    }
    text = json.dumps(metadata, indent=2, allow_nan=False)
    tensors = network.cpu_state_dict()
    clashes = set(tensors) & set(arrays)
    if clashes:  # pragma: no cover - the prefix cannot appear in a torch state dict
        raise ValueError(f"Weight names clash with fitted arrays: {sorted(clashes)}.")
    tensors.update({key: torch.from_numpy(array.copy()) for key, array in arrays.items()})

    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent))
    try:
        file_metadata = {"format": "pt", "skearly_format_version": str(FORMAT_VERSION)}
        save_file(tensors, scratch / WEIGHTS_FILE, metadata=file_metadata)
        (scratch / CONFIG_FILE).write_text(network.config.to_json_string(use_diff=False), encoding="utf-8")
        estimator.tokenizer_.save_pretrained(scratch / TOKENIZER_DIR)
        (scratch / METADATA_FILE).write_text(text, encoding="utf-8")  # last: a folder without it is incomplete
        _publish(scratch, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # gone already once published
    return folder


def _publish(scratch: Path, folder: Path) -> None:
    """Put the complete folder ``scratch`` in place of ``folder`` by renames, keeping the user's other files.

    Entries of an existing ``folder`` that are not skearly's are moved into ``scratch`` first;
    the old folder is renamed aside, ``scratch`` renamed into place, and the old one removed.
    """
    if not folder.exists():
        os.replace(scratch, folder)
        return
    ours = {WEIGHTS_FILE, METADATA_FILE, CONFIG_FILE, TOKENIZER_DIR}
    for entry in folder.iterdir():
        if entry.name not in ours:
            os.replace(entry, scratch / entry.name)
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.replaced-", dir=folder.parent))
    os.replace(folder, old / folder.name)
    os.replace(scratch, folder)
    shutil.rmtree(old, ignore_errors=True)


def _read_json(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise ValueError(f"{file.name} is missing from {file.parent}: this is not a complete skearly model folder.")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file.name} in {file.parent} is corrupted (not valid JSON): {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{file.name} in {file.parent} is corrupted: expected a JSON object.")
    return data


def _check_version(metadata: dict[str, Any], file: Path) -> None:
    if metadata.get("format") != _FORMAT_NAME:
        raise ValueError(f"{file.name} in {file.parent} is not a skearly model description.")
    version = metadata.get("format_version")
    if version == FORMAT_VERSION:
        return
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ValueError(
            f"{file.name} has format version {version}, written by skearly {metadata.get('skearly_version')}; "
            f"this skearly reads format version {FORMAT_VERSION}: upgrade skearly to load it."
        )
    raise ValueError(f"{file.name} has an unknown format version {version!r}; this skearly reads {FORMAT_VERSION}.")


def load_estimator(path: str | os.PathLike[str], cls: type) -> Any:
    """Read a folder written by :func:`save_estimator`; no pickle, nothing downloaded.

    Parameters
    ----------
    path : str or path-like
        The model folder.
    cls : type
        The estimator class to build (:class:`~skearly.EarlyExitTextClassifier`
        passes itself), called with the saved parameters.

    Returns
    -------
    EarlyExitTextClassifier
        The fitted estimator, its network on the CPU in eval mode.

    Raises
    ------
    ValueError
        If the folder or one of its files is missing or corrupted (the message
        names the file), its format version is newer or unknown, its encoder family
        is not supported, or its fitted state does not match the schema (the
        message names the file and the key).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder: pass the folder written by EarlyExitTextClassifier.save.")
    meta_file = folder / METADATA_FILE
    metadata = _read_json(meta_file)
    _check_version(metadata, meta_file)

    weights_file = folder / WEIGHTS_FILE
    if not weights_file.is_file():
        raise ValueError(f"{WEIGHTS_FILE} is missing from {folder}.")
    try:
        tensors = load_file(weights_file)
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{WEIGHTS_FILE} in {folder} is corrupted or truncated: {exc}") from exc
    arrays = {k: tensors.pop(k).numpy().copy() for k in [k for k in tensors if k.startswith(_ARRAY_PREFIX)]}

    config_file = folder / CONFIG_FILE
    config_dict = _read_json(config_file)
    model_type = config_dict.get("model_type")
    if model_type is not None and model_type not in supported_model_types():
        raise ValueError(
            f"{CONFIG_FILE} in {folder} has model_type={model_type!r}, an encoder family skearly does not "
            f"support (supported: {', '.join(supported_model_types())})."
        )
    try:
        config = AutoConfig.for_model(**config_dict)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{CONFIG_FILE} in {folder} is not a valid encoder config: {exc}") from exc

    try:
        params = {
            k: _decode_strategy(k, v) if k in _STRATEGY_PARAMS else _decode(v, {})
            for k, v in metadata["params"].items()
        }
        fitted = _decode_fitted(metadata["fitted"], arrays, meta_file)
        architecture = metadata["network"]
        network = MultiExitNetwork.from_config(config, **architecture)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{METADATA_FILE} in {folder} is corrupted or incomplete: {exc!r}") from exc
    _check_fitted(fitted, architecture, int(config.num_hidden_layers), meta_file)
    try:
        network.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"{WEIGHTS_FILE} in {folder} does not match the architecture in {CONFIG_FILE} and {METADATA_FILE}: {exc}"
        ) from exc

    tokenizer_dir = folder / TOKENIZER_DIR
    if not tokenizer_dir.is_dir():
        raise ValueError(f"{TOKENIZER_DIR}/ is missing from {folder}.")
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    except Exception as exc:  # the tokenizers library raises bare Exceptions on corrupted files
        raise ValueError(f"{TOKENIZER_DIR}/ in {folder} could not be loaded: {exc}") from exc

    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        warnings.warn(
            f"{METADATA_FILE} has parameters this skearly does not know, ignored: {unknown}.", UserWarning, stacklevel=3
        )
    estimator = cls(**{k: v for k, v in params.items() if k in known})
    for name, value in fitted.items():
        setattr(estimator, name, value)
    estimator.network_ = network.eval()
    estimator.tokenizer_ = tokenizer
    return estimator


# ----------------------------------------------------------------------------- fitted-state schema
def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _float_array(value: Any, ndim: int) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim == ndim


def _input_kind(value: Any) -> bool:
    if not isinstance(value, dict) or set(value) != {"pairs", "columns"} or not isinstance(value["pairs"], bool):
        return False
    columns = value["columns"]
    return columns is None or (isinstance(columns, list) and all(isinstance(c, str) for c in columns))


_CALIBRATION_INPUT_KEYS = frozenset({"input_ids", "attention_mask", "token_type_ids", "labels", "pad_token_id"})

#: Every fitted attribute ``fit`` sets (and :func:`save_estimator` writes): a test of its value given
#: the network (``n_heads``, ``n_classes``, ``n_layers``), and what it should be, for the message.
_FITTED_SCHEMA: dict[str, tuple[Callable[[Any, dict[str, int]], bool], str]] = {
    "classes_": (
        lambda v, n: isinstance(v, np.ndarray) and v.ndim == 1 and len(v) == n["n_classes"],
        "a 1-D array of the {n_classes} class labels",
    ),
    "n_layers_": (lambda v, n: _is_int(v) and v == n["n_layers"], "the int {n_layers} (the encoder's layers)"),
    "head_layers_": (
        lambda v, n: isinstance(v, tuple) and all(_is_int(x) for x in v) and list(v) == n["exit_layers"],
        "a tuple of ints, the network's exit layers {exit_layers}",
    ),
    "temperatures_": (
        lambda v, n: _float_array(v, 1) and len(v) == n["n_heads"] and bool(np.all(np.isfinite(v) & (v > 0))),
        "a 1-D float array of {n_heads} positive finite temperatures",
    ),
    "calibration_report_": (
        lambda v, n: isinstance(v, pd.DataFrame) and len(v) == n["n_heads"],
        "a DataFrame with one row per exit head ({n_heads})",
    ),
    "calibration_proba_": (
        lambda v, n: _float_array(v, 3) and v.shape[0] == n["n_heads"] and v.shape[2] == n["n_classes"],
        "a float array of shape ({n_heads}, n_calibration, {n_classes})",
    ),
    "calibration_inputs_": (
        lambda v, n: v is None or (isinstance(v, dict) and set(v) == _CALIBRATION_INPUT_KEYS),
        "None or a dict with the keys " + str(sorted(_CALIBRATION_INPUT_KEYS)),
    ),
    "input_kind_": (lambda v, n: _input_kind(v), 'a dict {{"pairs": bool, "columns": list of str or None}}'),
    "loss_curve_": (
        lambda v, n: isinstance(v, list) and all(_is_real(x) for x in v),
        "a list of numbers (the mean loss of each epoch)",
    ),
    "fit_time_": (lambda v, n: _is_real(v) and v >= 0, "a number of seconds >= 0"),
}


def _decode_fitted(data: Any, arrays: dict[str, np.ndarray], file: Path) -> dict[str, Any]:
    """The fitted attributes of ``skearly.json``, decoded one by one so that an error names its key."""
    if not isinstance(data, dict):
        raise ValueError(f"{file.name} in {file.parent} is corrupted: 'fitted' should be an object, got {data!r:.60}.")
    fitted = {}
    for name, value in data.items():
        try:
            fitted[name] = _decode(value, arrays)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ValueError(
                f"{file.name} in {file.parent} is corrupted: the fitted attribute {name!r} cannot be read "
                f"({exc!r:.120})."
            ) from None
    return fitted


def _check_fitted(fitted: dict[str, Any], architecture: dict[str, Any], n_layers: int, file: Path) -> None:
    """Check the decoded fitted state against :data:`_FITTED_SCHEMA`; a ``ValueError`` names the file and key."""
    exit_layers = list(architecture["exit_layers"])
    sizes = {
        "n_heads": len(exit_layers),
        "n_classes": int(architecture["n_classes"]),
        "n_layers": n_layers,
        "exit_layers": exit_layers,
    }
    for name, (test, expected) in _FITTED_SCHEMA.items():
        if name not in fitted:
            raise ValueError(
                f"{file.name} in {file.parent} is incomplete: the fitted attribute {name!r} is missing "
                f"(it should be {expected.format(**sizes)}). Save the model again with EarlyExitTextClassifier.save."
            )
        value = fitted[name]
        if not test(value, sizes):
            raise ValueError(
                f"{file.name} in {file.parent} is corrupted: the fitted attribute {name!r} should be "
                f"{expected.format(**sizes)}, got {type(value).__name__} {value!r:.80}."
            )
