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

Loading checks the format version and reports a missing or corrupted file with a
:class:`ValueError` that names it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
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
        Folder to create (or to update: skearly's files in it are overwritten).

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

    folder.mkdir(parents=True, exist_ok=True)
    (folder / METADATA_FILE).unlink(missing_ok=True)  # written last: an interrupted save leaves no loadable mix
    save_file(tensors, folder / WEIGHTS_FILE, metadata={"format": "pt", "skearly_format_version": str(FORMAT_VERSION)})
    (folder / CONFIG_FILE).write_text(network.config.to_json_string(use_diff=False), encoding="utf-8")
    tokenizer_dir = folder / TOKENIZER_DIR
    if tokenizer_dir.exists():
        shutil.rmtree(tokenizer_dir)
    estimator.tokenizer_.save_pretrained(tokenizer_dir)
    (folder / METADATA_FILE).write_text(text, encoding="utf-8")  # last: a folder without it is incomplete
    return folder


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
        names the file), or its format version is newer or unknown.
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
    try:
        config = AutoConfig.for_model(**config_dict)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{CONFIG_FILE} in {folder} is not a valid encoder config: {exc}") from exc

    try:
        params = {
            k: _decode_strategy(k, v) if k in _STRATEGY_PARAMS else _decode(v, {})
            for k, v in metadata["params"].items()
        }
        fitted = {k: _decode(v, arrays) for k, v in metadata["fitted"].items()}
        architecture = metadata["network"]
        network = MultiExitNetwork.from_config(config, **architecture)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{METADATA_FILE} in {folder} is corrupted or incomplete: {exc!r}") from exc
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
