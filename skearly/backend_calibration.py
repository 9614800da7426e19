"""Temperatures refitted for an inference backend on the calibration split stored at fit time.

``fit`` fits one temperature per exit head on the held-out calibration split,
from the fitted network's logits. A fast backend (:mod:`skearly.backends`) runs
other arithmetic (int8 weights and activations, ONNX Runtime kernels), so its
logits differ a little and the fit-time temperatures drift off. A backend whose
:attr:`~skearly.backends.InferenceBackend.refits_temperatures` is true gets its
own temperatures instead: the estimator keeps the calibration split's tokens and
labels (``calibration_inputs_``, packed by :func:`pack_calibration_inputs`), and
:func:`calibrate_backend` runs them once through the backend's layer runner and
refits every head's temperature with :func:`skearly.calibration.fit_temperature`.
The result is kept with the network (:func:`skearly.backends.cached_for_network`),
so it costs one pass over the calibration split per backend and network, not one
per ``predict``.

A model without stored calibration inputs (saved by an older skearly) predicts
with the fit-time temperatures, with a ``UserWarning`` when the backend would
refit them; a model fitted with ``calibration_size=0`` has nothing to refit on
and keeps its temperatures of 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ._batching import Encoded
from .backends import InferenceBackend, cached_for_network
from .calibration import calibrate_heads, calibrated_head_proba, calibrated_proba, expected_calibration_error
from .devices import autocast
from .layer_pass import all_head_logits
from .network import MultiExitNetwork

__all__ = [
    "BackendCalibration",
    "pack_calibration_inputs",
    "unpack_calibration_inputs",
    "calibrate_backend",
    "backend_calibration_report",
]


@dataclass(frozen=True, eq=False)
class BackendCalibration:
    """The temperatures a backend predicts with, and where they come from.

    Parameters
    ----------
    temperatures : ndarray of shape (n_heads,)
        Temperature of each exit head.
    proba : ndarray of shape (n_heads, n_calibration, n_classes) or None
        Calibrated probabilities of every head on the calibration split, through
        this backend and with these temperatures (what ``target_speedup`` picks
        its threshold from); ``None`` for a model that lacks them.
    report : pandas.DataFrame or None
        Per-head calibration on this backend's logits (see
        :func:`backend_calibration_report`); ``None`` when the temperatures are
        the fit-time ones (the fit-time report then applies).
    refitted : bool
        Whether the temperatures were refitted on this backend's logits.
    """

    temperatures: np.ndarray
    proba: np.ndarray | None
    report: pd.DataFrame | None
    refitted: bool


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


def calibrate_backend(
    backend: InferenceBackend,
    network: MultiExitNetwork,
    runner: Any,
    inputs: Mapping[str, Any] | None,
    temperatures: np.ndarray,
    proba: np.ndarray | None,
    *,
    batch_size: int,
    device: torch.device,
    mixed_precision: bool = False,
) -> BackendCalibration:
    """The temperatures ``backend`` predicts with: the fit-time ones, or refitted on its own logits.

    When ``backend.refits_temperatures`` is true and calibration inputs are
    stored, every head's temperature is refitted
    (:func:`skearly.calibration.fit_temperature`) on the backend's logits of the
    calibration split (:func:`skearly.layer_pass.all_head_logits` through
    ``runner``, in batches of ``batch_size`` rows). The result is computed once
    per backend, network weights, calibration inputs and fit-time temperatures,
    and kept with the network (:func:`skearly.backends.cached_for_network`).
    Otherwise the fit-time ``temperatures`` and ``proba`` are returned as they
    are (the very same arrays, so predictions do not change).

    Parameters
    ----------
    backend : InferenceBackend
        The backend that made ``runner``.
    network : MultiExitNetwork
        The fitted network (the cache key; not run itself).
    runner : object
        ``backend.prepare(network, device)``.
    inputs : mapping or None
        The stored calibration split (:func:`pack_calibration_inputs`), ``None``
        for a model that lacks it (then a backend that refits warns and keeps the
        fit-time temperatures). Treat it as read-only: it is recognised by identity.
    temperatures : ndarray of shape (n_heads,)
        The fit-time temperatures.
    proba : ndarray of shape (n_heads, n_calibration, n_classes) or None
        The fit-time calibrated probabilities of the calibration split.
    batch_size : int
        Rows per batch of the calibration pass.
    device : torch.device
        Where to compute.
    mixed_precision : bool, default=False
        Autocast on CUDA during the calibration pass.

    Returns
    -------
    BackendCalibration
    """
    fit_time = BackendCalibration(temperatures, proba, None, refitted=False)
    if not backend.refits_temperatures:
        return fit_time
    if inputs is None:
        warnings.warn(
            f"backend={backend.name!r} refits the temperatures on the calibration split stored at fit time, but "
            "this model has none (saved by an older skearly): it predicts with the temperatures fitted on the "
            "fitted network's logits, whose calibration may have drifted with this backend. Refit the model to "
            "store its calibration split.",
            UserWarning,
            stacklevel=2,
        )
        return fit_time
    if len(inputs["labels"]) == 0:  # calibration_size=0: nothing to refit on (the temperatures are 1)
        return fit_time
    fit_temperatures = np.asarray(temperatures, dtype=np.float64)
    key = (
        "temperatures",
        backend,
        int(batch_size),
        bool(mixed_precision),
        id(inputs["input_ids"]),
        id(inputs["labels"]),
        tuple(fit_temperatures.tolist()),
    )

    def refit() -> tuple[BackendCalibration, Any, Any]:
        # the arrays are kept with the result so that their ids in the key cannot be reused by others
        calibration = _refit(runner, inputs, fit_temperatures, batch_size, device, mixed_precision)
        return calibration, inputs["input_ids"], inputs["labels"]

    return cached_for_network(network, key, refit)[0]


def _refit(
    runner: Any,
    inputs: Mapping[str, Any],
    fit_temperatures: np.ndarray,
    batch_size: int,
    device: torch.device,
    mixed_precision: bool,
) -> BackendCalibration:
    """One pass of the calibration split through ``runner``, and a temperature per head fitted on its logits."""
    encoded, y = unpack_calibration_inputs(inputs)
    with torch.inference_mode(), autocast(device, mixed_precision):
        logits = all_head_logits(runner, encoded, batch_size, device)
    temperatures, report = calibrate_heads(logits, y, tuple(runner.exit_layers), stacklevel=None)
    report.insert(2, "fit_temperature", fit_temperatures)
    report.insert(
        report.columns.get_loc("ece_after") + 1,
        "ece_fit_temperature",
        [expected_calibration_error(calibrated_proba(h, t), y) for h, t in zip(logits, fit_temperatures, strict=True)],
    )
    return BackendCalibration(temperatures, calibrated_head_proba(logits, temperatures), report, refitted=True)


def backend_calibration_report(calibration: BackendCalibration, fit_report: pd.DataFrame) -> pd.DataFrame:
    """Per-head calibration of the temperatures a backend predicts with, measured on the calibration split.

    Parameters
    ----------
    calibration : BackendCalibration
        From :func:`calibrate_backend`.
    fit_report : pandas.DataFrame
        The fit-time report (``calibration_report_``), used when the temperatures were not refitted.

    Returns
    -------
    pandas.DataFrame
        One row per exit head with the columns of ``calibration_report_``
        (``layer``, ``temperature``, ``accuracy``, ``ece_before``, ``ece_after``,
        ``nll_before``, ``nll_after`` ...), measured on the backend's logits when
        the temperatures were refitted, plus ``fit_temperature`` (the fit-time
        temperature), ``ece_fit_temperature`` (ECE of the backend's logits with
        the fit-time temperature: what the backend would give without the refit)
        and ``refitted``. Without a refit, ``temperature`` equals
        ``fit_temperature`` and ``ece_fit_temperature`` equals ``ece_after``.
        ``ece_after`` is measured on the rows the temperature was fitted on, so
        it is optimistic: judge calibration on held-out data.
    """
    if calibration.report is None:
        report = fit_report.copy()
        report.insert(2, "fit_temperature", report["temperature"])
        if "ece_after" in report:
            report.insert(report.columns.get_loc("ece_after") + 1, "ece_fit_temperature", report["ece_after"])
    else:
        report = calibration.report.copy()
    report["refitted"] = calibration.refitted
    return report
