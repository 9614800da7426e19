"""Predict side: the inference engine.

Tokenized chunks go to a batch scheduler (``scheduler=``: :class:`ShrinkingScheduler`,
:class:`RefillingScheduler`), which sends groups of rows through the layer runner of an
inference backend (``backend=``: :class:`InferenceBackend` and its registry
:data:`BACKENDS`); after each exit head the exit criterion (:mod:`skearly.exit_criteria`)
decides which rows leave. :class:`InferenceEngine` ties them together. Backends that run
other arithmetic refit their temperatures on the stored calibration split
(:func:`calibrate_backend`).
"""

from skearly.inference._backend_calibration import BackendCalibration, backend_calibration_report, calibrate_backend
from skearly.inference._backends import (
    BACKENDS,
    Bf16Backend,
    CachedBackend,
    InferenceBackend,
    Int8Backend,
    OnnxBackend,
    OnnxInt8Backend,
    TorchBackend,
    cached_for_network,
    resolve_backend,
)
from skearly.inference._engine import DEFAULT_CHUNK_SIZE, InferenceEngine, simulate_exits
from skearly.inference._schedulers import (
    SCHEDULERS,
    BatchScheduler,
    RefillingScheduler,
    ShrinkingScheduler,
    resolve_scheduler,
)
from skearly.inference._score_memo import RECENT_HEAD_PROBA, head_proba_key

__all__ = [
    "InferenceEngine",
    "simulate_exits",
    "DEFAULT_CHUNK_SIZE",
    "BatchScheduler",
    "ShrinkingScheduler",
    "RefillingScheduler",
    "SCHEDULERS",
    "resolve_scheduler",
    "InferenceBackend",
    "TorchBackend",
    "CachedBackend",
    "Bf16Backend",
    "Int8Backend",
    "OnnxBackend",
    "OnnxInt8Backend",
    "BACKENDS",
    "cached_for_network",
    "resolve_backend",
    "BackendCalibration",
    "calibrate_backend",
    "backend_calibration_report",
    "RECENT_HEAD_PROBA",
    "head_proba_key",
]
