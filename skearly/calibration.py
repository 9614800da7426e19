"""Temperature scaling (Guo et al., 2017) and expected calibration error.

Each exit head gets one temperature ``T > 0``; its calibrated probabilities are
``softmax(logits / T)``. ``T`` minimises the negative log-likelihood of held-out
labels, which leaves the head's predictions (argmax) unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

__all__ = [
    "calibrated_head_proba",
    "fit_temperature", "expected_calibration_error", "negative_log_likelihood", "calibrated_proba"]

_LOG_T_BOUNDS = (-4.0, 4.0)  # T in [0.018, 54.6]


def calibrated_proba(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` row-wise."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def negative_log_likelihood(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of integer labels ``y`` under ``softmax(logits / temperature)``."""
    log_p = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-log_p[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Find the temperature that minimises the NLL of ``y`` (bounded search on ``log T``).

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
        bounds=_LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


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
    """
    if len(y) == 0:
        return float("nan")
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        total += in_bin.sum() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total / len(y))


def calibrated_head_proba(logits: np.ndarray, temperatures: np.ndarray) -> np.ndarray:
    """Calibrated probabilities of every head, computed exactly as the inference engine does.

    Parameters
    ----------
    logits : ndarray of shape (n_heads, n_rows, n_classes)
        Logits of every head (float32), as from :func:`skearly.training.all_exit_logits`.
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
