"""Temperature scaling (Guo et al., 2017) and expected calibration error.

Each exit head gets one temperature ``T > 0``; its calibrated probabilities are
``softmax(logits / T)``. ``T`` minimises the negative log-likelihood of held-out
labels, which leaves the head's predictions (argmax) unchanged.

How many rows calibration needs
-------------------------------
One temperature per head is a single parameter, but the NLL it minimises and,
above all, the expected calibration error (ECE) used to judge it are noisy on
small splits: with 15 confidence bins, a few hundred rows leave most bins with
a handful of rows, and the ECE of a perfectly calibrated head is then often
0.03-0.05 from sampling noise alone. skearly warns (``UserWarning``) when the
calibration split has fewer than :data:`MIN_CALIBRATION_ROWS` rows or fewer
than :data:`MIN_ROWS_PER_CLASS` rows of some class; aim for 1,000 rows or more
when the ECE itself matters. :func:`ece_interval` gives a bootstrap interval
that shows how much an ECE can be trusted, and :func:`ece_noise_floor` the ECE
that a *perfectly* calibrated head with the same confidences would show on a
split of that size: an ECE near its floor is sampling noise, not miscalibration.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

__all__ = [
    "calibrate_heads",
    "calibrated_head_proba",
    "MIN_CALIBRATION_ROWS",
    "MIN_ROWS_PER_CLASS",
    "TEMPERATURE_BOUNDS",
    "fit_temperature",
    "expected_calibration_error",
    "ece_interval",
    "ece_noise_floor",
    "negative_log_likelihood",
    "calibrated_proba",
    "warn_if_too_small",
]

#: Fewer calibration rows than this trigger a ``UserWarning`` (see :func:`warn_if_too_small`).
MIN_CALIBRATION_ROWS = 100
#: Fewer calibration rows than this in some class trigger a ``UserWarning``.
MIN_ROWS_PER_CLASS = 10
#: Range searched for each temperature (the search runs on ``log T``).
TEMPERATURE_BOUNDS = (0.05, 20.0)


def calibrated_proba(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` row-wise."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def negative_log_likelihood(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of integer labels ``y`` under ``softmax(logits / temperature)``."""
    log_p = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-log_p[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Find the temperature that minimises the NLL of ``y`` (bounded search on ``log T``).

    The search is Brent's bounded method on ``log T`` over
    :data:`TEMPERATURE_BOUNDS` (the NLL is unimodal in ``log T``). The result is
    never worse in NLL on ``(logits, y)`` than ``T = 1``: if the search ends
    worse (a flat or degenerate split), 1.0 is returned.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
        Uncalibrated logits of one head on held-out data.
    y : ndarray of shape (n_samples,)
        Integer class indices.

    Returns
    -------
    float
        The temperature; 1.0 when there is no data.
    """
    if len(y) == 0:
        return 1.0
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, y, float(np.exp(log_t))),
        bounds=tuple(np.log(TEMPERATURE_BOUNDS)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    t = float(np.exp(result.x))
    if not np.isfinite(t) or negative_log_likelihood(logits, y, t) > negative_log_likelihood(logits, y, 1.0):
        return 1.0
    return t


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")


def _binned_gap(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> np.ndarray:
    """``sum_b |hits(B_b) - confidence(B_b)| / n`` over ``n_bins`` equal-width confidence bins.

    ``correct`` is one row of 0/1 outcomes per sample, or several rows (one
    result each): the binned ECE, written as sums per bin.
    """
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    confidence_sums = np.bincount(bins, weights=confidence, minlength=n_bins)
    hits = np.stack([np.bincount(bins, weights=row, minlength=n_bins) for row in np.atleast_2d(correct)])
    return np.abs(hits - confidence_sums).sum(axis=1) / len(confidence)


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence, with ``n_bins`` equal-width bins.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Predicted probabilities.
    y : ndarray of shape (n_samples,)
        Integer class indices.
    n_bins : int, default=15
        Number of confidence bins on [0, 1].

    Returns
    -------
    float
        ``sum_b |B_b|/n * |accuracy(B_b) - confidence(B_b)|``; NaN when there is no data.

    Raises
    ------
    ValueError
        If ``n_bins`` is not an integer >= 1.
    """
    _check_positive_int(n_bins, "n_bins")
    if len(y) == 0:
        return float("nan")
    proba = np.asarray(proba)
    return float(_binned_gap(proba.max(axis=1), proba.argmax(axis=1) == np.asarray(y), n_bins)[0])


def calibrated_head_proba(logits: np.ndarray, temperatures: np.ndarray) -> np.ndarray:
    """Calibrated probabilities of every head, computed exactly as the inference engine does.

    Parameters
    ----------
    logits : ndarray of shape (n_heads, n_rows, n_classes)
        Logits of every head (float32), as from :func:`skearly.network.all_head_logits`.
    temperatures : ndarray of shape (n_heads,)
        Fitted temperature of each head.

    Returns
    -------
    ndarray of shape (n_heads, n_rows, n_classes), float32
        ``softmax(logits * (1 / T))`` in float32 torch arithmetic, the same
        operations as :meth:`skearly.inference.InferenceEngine.predict`, so exit
        decisions simulated on them match ``predict``.
    """
    inverse_t = torch.as_tensor(1.0 / np.asarray(temperatures, dtype=np.float32))
    out = np.empty(logits.shape, dtype=np.float32)
    for head in range(logits.shape[0]):
        head_logits = torch.as_tensor(np.asarray(logits[head], dtype=np.float32))
        out[head] = torch.softmax(head_logits * inverse_t[head], dim=1).numpy()
    return out


def ece_interval(
    proba: np.ndarray, y: np.ndarray, *, n_bins: int = 15, n_resamples: int = 200, level: float = 0.9, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`expected_calibration_error`.

    Binned ECE is biased upward on small samples, and more so on resamples (which
    repeat rows), so for a well-calibrated head the interval can sit above the
    point estimate: read its width as the uncertainty, its upper end as a bound.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Predicted probabilities.
    y : ndarray of shape (n_samples,)
        Integer class indices.
    n_bins : int, default=15
        Number of confidence bins.
    n_resamples : int, default=200
        Bootstrap resamples of the rows (with replacement).
    level : float, default=0.9
        Coverage of the interval, in (0, 1).
    seed : int, default=0
        Seed of the resampling (fixed, so reports are reproducible).

    Returns
    -------
    (float, float)
        Lower and upper ends; ``(nan, nan)`` when there is no data.
    """
    y = np.asarray(y)
    if len(y) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = [
        expected_calibration_error(proba[rows], y[rows], n_bins)
        for rows in rng.integers(0, len(y), size=(n_resamples, len(y)))
    ]
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def ece_noise_floor(proba: np.ndarray, *, n_bins: int = 15, n_resamples: int = 200, seed: int = 0) -> float:
    """Expected ECE of a perfectly calibrated head with these confidences, on a split of this size.

    Binned ECE is biased upward: even when every confidence is exact, each bin's
    accuracy is a sample mean, so ``|accuracy - confidence|`` is positive. This
    simulates that case: each row is correct with probability equal to its
    top-class confidence, drawn ``n_resamples`` times, and the ECE of each draw
    is averaged. Compare a measured ECE with this floor (it shrinks as
    ``1/sqrt(rows)``); the floor does not depend on the labels.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Predicted (calibrated) probabilities.
    n_bins : int, default=15
        Number of confidence bins, as in :func:`expected_calibration_error`.
    n_resamples : int, default=200
        Simulated label draws.
    seed : int, default=0
        Seed of the draws (fixed, so reports are reproducible).

    Returns
    -------
    float
        Mean ECE over the draws; NaN when there is no data.

    Raises
    ------
    ValueError
        If ``n_bins`` or ``n_resamples`` is not an integer >= 1.
    """
    _check_positive_int(n_bins, "n_bins")
    _check_positive_int(n_resamples, "n_resamples")
    proba = np.asarray(proba, dtype=np.float64)
    if len(proba) == 0:
        return float("nan")
    confidence = proba.max(axis=1)
    correct = np.random.default_rng(seed).random((n_resamples, len(confidence))) < confidence
    return float(_binned_gap(confidence, correct, n_bins).mean())


def warn_if_too_small(y: np.ndarray, n_classes: int, *, stacklevel: int = 2) -> bool:
    """Warn (``UserWarning``) when a calibration split is too small to calibrate reliably.

    Too small means fewer than :data:`MIN_CALIBRATION_ROWS` rows, or fewer than
    :data:`MIN_ROWS_PER_CLASS` rows of some class. An empty split (calibration
    switched off) is not warned about.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Integer class indices of the calibration split.
    n_classes : int
        Number of classes of the model.
    stacklevel : int, default=2
        Passed to :func:`warnings.warn`.

    Returns
    -------
    bool
        Whether a warning was issued.
    """
    y = np.asarray(y)
    if len(y) == 0:
        return False
    per_class = np.bincount(y, minlength=n_classes)
    if len(y) >= MIN_CALIBRATION_ROWS and per_class.min() >= MIN_ROWS_PER_CLASS:
        return False
    warnings.warn(
        f"The calibration split has only {len(y)} rows (fewest in one class: {int(per_class.min())}); "
        f"temperatures and ECE need at least {MIN_CALIBRATION_ROWS} rows and {MIN_ROWS_PER_CLASS} per class to "
        "be more than noise (1,000+ rows for an ECE within about 0.03). Raise calibration_size or pass more "
        "data; the temperatures are fitted anyway.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return True


def calibrate_heads(
    logits: np.ndarray, y: np.ndarray, head_layers: tuple[int, ...], *, stacklevel: int | None = 2
) -> tuple[np.ndarray, pd.DataFrame]:
    """Fit one temperature per exit head on held-out logits and report accuracy, ECE and NLL before/after.

    Parameters
    ----------
    logits : ndarray of shape (n_heads, n_rows, n_classes)
        Logits of every head on the calibration split.
    y : ndarray of shape (n_rows,)
        Integer class indices.
    head_layers : tuple of int
        1-based encoder layer of each head (the report's ``layer`` column).
    stacklevel : int or None, default=2
        Warn (:func:`warn_if_too_small`) when the split is too small, pointing
        ``stacklevel`` frames up (2: the caller); ``None`` does not warn.

    Returns
    -------
    temperatures : ndarray of shape (n_heads,)
        :func:`fit_temperature` of each head (1.0 without rows).
    report : pandas.DataFrame
        One row per head: ``layer``, ``temperature``, ``accuracy``, ``ece_before``,
        ``ece_after``, ``nll_before``, ``nll_after``, ``ece_after_low`` and
        ``ece_after_high`` (a 90% bootstrap interval of ``ece_after``, see
        :func:`ece_interval`), ``ece_noise_floor`` (the ECE a perfectly
        calibrated head would show here, see :func:`ece_noise_floor`) and
        ``n_rows`` (size of the split); the metrics are NaN without rows.
    """
    if stacklevel is not None:
        warn_if_too_small(y, logits.shape[-1], stacklevel=stacklevel + 1)
    temperatures, records = [], []
    for layer, head_logits in zip(head_layers, logits, strict=True):
        t = fit_temperature(head_logits, y)
        temperatures.append(t)
        if len(y):
            raw, scaled = calibrated_proba(head_logits, 1.0), calibrated_proba(head_logits, t)
            metrics = {
                "accuracy": float((raw.argmax(1) == y).mean()),
                "ece_before": expected_calibration_error(raw, y),
                "ece_after": expected_calibration_error(scaled, y),
                "nll_before": negative_log_likelihood(head_logits, y),
                "nll_after": negative_log_likelihood(head_logits, y, t),
            }
            metrics["ece_after_low"], metrics["ece_after_high"] = ece_interval(scaled, y)
            metrics["ece_noise_floor"] = ece_noise_floor(scaled)
        else:
            metrics = dict.fromkeys(
                (
                    "accuracy",
                    "ece_before",
                    "ece_after",
                    "nll_before",
                    "nll_after",
                    "ece_after_low",
                    "ece_after_high",
                    "ece_noise_floor",
                ),
                np.nan,
            )
        records.append({"layer": layer, "temperature": t, **metrics, "n_rows": len(y)})
    return np.asarray(temperatures), pd.DataFrame.from_records(records)
