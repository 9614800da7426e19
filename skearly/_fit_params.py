"""The estimator's parameters, checked and resolved before ``fit`` (private to :mod:`skearly.estimator`).

:func:`check_params` validates every parameter at the start of ``fit`` (``__init__`` only
stores them); :func:`resolve_head_layers` and :func:`fit_params` turn them into the
:class:`~skearly.training.FitParams` of one fine-tune.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from skearly._utils.devices import training_precision
from skearly._utils.validation import check_number, check_threshold
from skearly.exit_criteria import resolve_criterion
from skearly.inference import resolve_backend, resolve_scheduler
from skearly.network import POOLINGS
from skearly.objectives import resolve_objective
from skearly.training import FitParams, encoder_identity, resolve_memory

__all__ = ["check_params", "check_target_speedup", "check_against_heads", "resolve_head_layers", "fit_params"]


def check_params(estimator: Any) -> None:
    """Validate every parameter of an :class:`~skearly.EarlyExitTextClassifier`; raise on the first bad one."""
    check_threshold(estimator.threshold)
    check_number("target_speedup", estimator.target_speedup, kind=float, low=1, optional=True)
    resolve_memory(estimator.memory)
    resolve_criterion(estimator.exit_criterion)
    resolve_objective(estimator.objective)
    check_number("max_length", estimator.max_length, kind=int, low=2)
    check_number("batch_size", estimator.batch_size, kind=int, low=1)
    check_number("predict_batch_size", estimator.predict_batch_size, kind=int, low=1)
    resolve_scheduler(estimator.scheduler, torch.device("cpu"))
    resolve_backend(estimator.backend)
    check_number("epochs", estimator.epochs, kind=int, low=0)
    check_number("learning_rate", estimator.learning_rate, kind=float, low=0, low_open=True)
    check_number("head_learning_rate", estimator.head_learning_rate, kind=float, low=0, low_open=True, optional=True)
    check_number("max_grad_norm", estimator.max_grad_norm, kind=float, low=0, low_open=True, optional=True)
    check_number("weight_decay", estimator.weight_decay, kind=float, low=0)
    check_number("warmup_ratio", estimator.warmup_ratio, kind=float, low=0, high=1)
    check_number("calibration_size", estimator.calibration_size, kind=float, low=0, high=1, high_open=True)
    check_number("dropout", estimator.dropout, kind=float, low=0, high=1, high_open=True)
    check_number("verbose", estimator.verbose, kind=int, low=0)
    if estimator.pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {estimator.pooling!r}.")
    for name in ("mixed_precision", "group_by_length"):
        if not isinstance(getattr(estimator, name), (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {getattr(estimator, name)!r}.")


def check_target_speedup(target_speedup: Any, head_layers: tuple[int, ...]) -> float:
    """``target_speedup`` checked against the exit layers: in ``[1, last head layer]``.

    The layer-count speed-up over full depth cannot exceed the last head layer (every row leaving at layer 1).
    """
    return check_number("target_speedup", target_speedup, kind=float, low=1, high=head_layers[-1])


def check_against_heads(estimator: Any, head_layers: tuple[int, ...]) -> None:
    """The parameters that depend on the exit layers, checked by ``fit`` before training.

    ``target_speedup`` within reach, the objective's settings against ``epochs`` and
    the heads (:meth:`~skearly.objectives.TrainingObjective.validate`), the exit
    criterion's against the heads (:meth:`~skearly.exit_criteria.ExitCriterion.validate`).
    """
    if estimator.target_speedup is not None:
        check_target_speedup(estimator.target_speedup, head_layers)
    resolve_objective(estimator.objective).validate(n_epochs=int(estimator.epochs), n_heads=len(head_layers))
    resolve_criterion(estimator.exit_criterion, len(head_layers))


def resolve_head_layers(head_layers: Any, n_layers: int) -> tuple[int, ...]:
    """The exit layers: ``head_layers`` checked against an encoder of ``n_layers`` layers (``None``: every layer)."""
    if head_layers is None:
        return tuple(range(1, n_layers + 1))
    if isinstance(head_layers, (str, bytes)) or not hasattr(head_layers, "__iter__"):
        raise TypeError(f"head_layers must be a sequence of layer numbers or None, got {head_layers!r}.")
    layers = list(head_layers)
    if not layers or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in layers):
        raise ValueError(f"head_layers must be a non-empty sequence of ints, got {head_layers!r}.")
    if any(v < 1 or v > n_layers for v in layers) or sorted(set(layers)) != layers:
        raise ValueError(
            f"head_layers must be strictly increasing layer numbers in 1..{n_layers} "
            f"(this encoder has {n_layers} layers), got {head_layers!r}."
        )
    return tuple(int(v) for v in layers)


def fit_params(estimator: Any, path: str, head_layers: tuple[int, ...], device: torch.device) -> tuple[Any, FitParams]:
    """The fit cache to use and the :class:`~skearly.training.FitParams` of one fine-tune of ``estimator``.

    The cache is ``estimator.memory``, or ``None`` (with a ``UserWarning``) when
    ``random_state`` is not an int: an unseeded fit is not reproducible.
    """
    seed = int(check_random_state(estimator.random_state).randint(np.iinfo(np.int32).max))
    memory = estimator.memory
    if memory is not None and not _is_seed(estimator.random_state):
        warnings.warn(
            "memory is set but random_state is not an int: an unseeded fit is not reproducible, so it is "
            "neither cached nor read from the cache. Pass random_state=<int> to cache fits.",
            UserWarning,
            stacklevel=3,
        )
        memory = None
    params = FitParams(
        encoder_path=path,
        encoder_identity=encoder_identity(path) if memory is not None else (),
        head_layers=head_layers,
        max_length=int(estimator.max_length),
        batch_size=int(estimator.batch_size),
        epochs=int(estimator.epochs),
        learning_rate=float(estimator.learning_rate),
        weight_decay=float(estimator.weight_decay),
        warmup_ratio=float(estimator.warmup_ratio),
        calibration_size=float(estimator.calibration_size),
        pooling=str(estimator.pooling),
        dropout=float(estimator.dropout),
        seed=seed,
        device_type=device.type,
        mixed_precision=bool(estimator.mixed_precision),
        objective=resolve_objective(estimator.objective),
        head_learning_rate=None if estimator.head_learning_rate is None else float(estimator.head_learning_rate),
        max_grad_norm=None if estimator.max_grad_norm is None else float(estimator.max_grad_norm),
        group_by_length=bool(estimator.group_by_length),
        training_precision=training_precision(device, bool(estimator.mixed_precision)),
    )
    return memory, params


def _is_seed(random_state: Any) -> bool:
    """Whether ``random_state`` makes fits reproducible (an int, not a RandomState or None)."""
    return isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool)
