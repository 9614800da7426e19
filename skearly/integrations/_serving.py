"""Labels, probabilities and exit layers of one prediction pass, for the Spark and MLflow integrations."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

_LOCK = threading.Lock()


def predict_all(model: Any, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted labels, class probabilities and exit layers of ``X`` from one pass of ``model``.

    Uses the public ``predict_proba`` and the ``exit_layers_`` it sets, under a
    process-wide lock so that concurrent callers (a threaded model server) each
    read their own call's exit layers.

    Parameters
    ----------
    model : EarlyExitTextClassifier
        A fitted estimator.
    X : sequence of str or of (str, str) pairs, Series or DataFrame
        Texts (or pairs).

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    proba : ndarray of shape (n_samples, n_classes)
    exit_layers : ndarray of shape (n_samples,), int64
    """
    with _LOCK:
        proba = model.predict_proba(X)
        layers = np.asarray(model.exit_layers_, dtype=np.int64)
    return model.classes_[proba.argmax(axis=1)], proba, layers
