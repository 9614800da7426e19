"""Whether a fit learned anything: the last head against the majority class on the calibration split."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = ["learned_nothing", "warn_if_learned_nothing"]

#: How many standard errors of the majority share the last head's accuracy must clear (one-sided, ~98%).
_NOISE_Z = 2.0


def learned_nothing(proba: np.ndarray, labels: np.ndarray) -> tuple[bool, float, float, float]:
    """Whether predictions ``proba`` on ``labels`` are no better than always predicting the majority class.

    The accuracy must exceed the majority share ``p`` by more than ``2 * sqrt(p (1 - p) / n)``
    (the noise of an accuracy measured on ``n`` rows). When even a perfect accuracy could
    not clear that margin (too few rows), nothing can be told and the answer is ``False``.

    Parameters
    ----------
    proba : ndarray of shape (n_rows, n_classes)
        Class probabilities (of the last head).
    labels : ndarray of shape (n_rows,)
        Class indices.

    Returns
    -------
    nothing : bool
        Whether the accuracy is not above the majority share beyond noise.
    accuracy, majority, margin : float
        The accuracy, the majority share and the noise margin it had to clear.
    """
    n = len(labels)
    if n == 0:
        return False, math.nan, math.nan, math.nan
    accuracy = float(np.mean(proba.argmax(axis=1) == labels))
    majority = float(np.bincount(labels).max() / n)
    margin = _NOISE_Z * math.sqrt(majority * (1.0 - majority) / n)
    if majority + margin >= 1.0:
        return False, accuracy, majority, margin
    return accuracy <= majority + margin, accuracy, majority, margin


def warn_if_learned_nothing(calibration_proba: np.ndarray, calibration_inputs: dict[str, Any] | None) -> bool:
    """Warn (``ConvergenceWarning``) when the last head learned nothing on the calibration split.

    Parameters
    ----------
    calibration_proba : ndarray of shape (n_heads, n_calibration, n_classes)
        Every head's calibrated probabilities on the calibration split.
    calibration_inputs : dict or None
        The calibration split; its ``labels`` are the class indices.

    Returns
    -------
    bool
        Whether it warned.
    """
    if calibration_inputs is None or calibration_proba.shape[1] == 0:
        return False
    nothing, accuracy, majority, margin = learned_nothing(calibration_proba[-1], calibration_inputs["labels"])
    if nothing:
        warnings.warn(
            f"The fit learned nothing measurable: the last exit head's accuracy on the calibration split "
            f"({accuracy:.3f} on {calibration_proba.shape[1]} rows) is not above the majority class's share "
            f"({majority:.3f}) by more than the noise ({margin:.3f}), so its predictions and early exits mean "
            "little. Try more epochs, more training data, a higher learning_rate or a larger encoder.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return nothing
