"""Temperatures refitted for an inference backend on the calibration split stored at fit time.

``fit`` fits one temperature per exit head on the held-out calibration split,
from the fitted network's logits. A fast backend (:mod:`skearly.inference`) runs
other arithmetic (int8 weights and activations, ONNX Runtime kernels), so its
logits differ a little and the fit-time temperatures drift off. A backend whose
:attr:`~skearly.inference.InferenceBackend.refits_temperatures` is true gets its
own temperatures instead: the estimator keeps the calibration split's tokens and
labels (``calibration_inputs_``, packed by :func:`skearly._utils.batching.pack_calibration_inputs`), and
:func:`calibrate_backend` runs them once through the backend's layer runner and
refits every head's temperature with :func:`skearly.calibration.fit_temperature`.
The result is kept with the network (:func:`skearly.inference.cached_for_network`),
so it costs one pass over the calibration split per backend and network, not one
per ``predict``. A model fitted with ``calibration_size=0`` has
nothing to refit on and keeps its temperatures of 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from skearly._utils.batching import unpack_calibration_inputs
from skearly._utils.devices import autocast
from skearly.calibration import calibrate_heads, calibrated_head_proba, calibrated_proba, expected_calibration_error
from skearly.inference._backends import InferenceBackend, cached_for_network
from skearly.network import MultiExitNetwork, all_head_logits

__all__ = [
    "BackendCalibration",
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
    proba : ndarray of shape (n_heads, n_calibration, n_classes)
        Calibrated probabilities of every head on the calibration split, through
        this backend and with these temperatures (what ``target_speedup`` picks
        its threshold from).
    report : pandas.DataFrame or None
        Per-head calibration on this backend's logits (see
        :func:`backend_calibration_report`); ``None`` when the temperatures are
        the fit-time ones (the fit-time report then applies).
    refitted : bool
        Whether the temperatures were refitted on this backend's logits.
    """

    temperatures: np.ndarray
    proba: np.ndarray
    report: pd.DataFrame | None
    refitted: bool


def calibrate_backend(
    backend: InferenceBackend,
    network: MultiExitNetwork,
    runner: Any,
    inputs: Mapping[str, Any],
    temperatures: np.ndarray,
    proba: np.ndarray,
    *,
    batch_size: int,
    device: torch.device,
    mixed_precision: bool = False,
) -> BackendCalibration:
    """The temperatures ``backend`` predicts with: the fit-time ones, or refitted on its own logits.

    When ``backend.refits_temperatures`` is true and calibration inputs are
    stored, every head's temperature is refitted
    (:func:`skearly.calibration.fit_temperature`) on the backend's logits of the
    calibration split (:func:`skearly.network.all_head_logits` through
    ``runner``, in batches of ``batch_size`` rows). The result is computed once
    per backend, network weights, calibration inputs and fit-time temperatures,
    and kept with the network (:func:`skearly.inference.cached_for_network`).
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
    inputs : mapping
        The stored calibration split (:func:`skearly._utils.batching.pack_calibration_inputs`).
        Treat it as read-only: it is recognised by identity.
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
