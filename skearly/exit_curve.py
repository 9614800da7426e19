"""Every speed/accuracy trade-off of one fitted model from one pass: exit curves, oracles and a speed-up budget.

One pass through all layers gives the calibrated probabilities of every exit
head for every row (:meth:`skearly.inference.InferenceEngine.head_proba`). From them
:func:`skearly.inference.simulate_exits` replays the estimator's exit rule for
any threshold without re-running the encoder, which gives

* :func:`exit_curve_from_proba` -- one row per threshold: score, mean exit layer,
  layer-count speed-up and the fraction of rows leaving at each exit, plus two
  oracle rows (the best any exit rule could do with this network);
* :func:`threshold_for_speedup` -- the highest threshold that reaches a target
  speed-up (the estimator's ``target_speedup`` budget mode);
* :class:`ExitCurveDisplay` -- the curve as a scikit-learn style plot.

Speed-ups here count layers, not seconds: ``n_layers_used / mean exit layer``,
where ``n_layers_used`` is the last exit layer (every layer when each has a
head). Wall-clock speed-ups are a little lower (the exit heads and the
per-layer bookkeeping cost time too); see ``examples/quickstart.py`` to measure them.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score

from skearly._utils.validation import check_targets, check_thresholds
from skearly.exit_criteria import ExitCriterion
from skearly.inference import simulate_exits

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ExitCurveDisplay",
    "exit_curve_from_proba",
    "check_metric",
    "layer_speedup",
    "threshold_for_speedup",
]

#: Thresholds of :meth:`EarlyExitTextClassifier.exit_curve` when none are given (1.0 = full depth).
DEFAULT_THRESHOLDS: tuple[float, ...] = (1.0, 0.99, 0.98, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5)


def check_metric(scoring: Any) -> Callable[[Any, Any], float]:
    """``scoring`` checked as a metric function called as ``scoring(y_true, y_pred)`` on labels.

    Parameters
    ----------
    scoring : callable
        The metric.

    Returns
    -------
    callable
        ``scoring`` itself.

    Raises
    ------
    TypeError
        If it is not callable, or is a scikit-learn scorer object (``make_scorer``,
        ``get_scorer``) or another function of ``(estimator, X, y)``: those need an
        estimator, while exit curves score many thresholds from one set of predictions.
    """
    if not callable(scoring):
        raise TypeError(f"scoring must be a metric function called as scoring(y_true, y_pred), got {scoring!r}.")
    metric = getattr(scoring, "_score_func", None)
    try:
        first = next(iter(inspect.signature(scoring).parameters), "")
    except (TypeError, ValueError):  # builtins without a signature: trust them
        first = ""
    if metric is not None or first in ("estimator", "clf", "model"):
        hint = f" such as {getattr(metric, '__name__', 'its metric')}" if metric is not None else ""
        raise TypeError(
            f"scoring={scoring!r:.80} is a scorer called as scoring(estimator, X, y); exit curves need a metric "
            f"function called as scoring(y_true, y_pred){hint} (with options: functools.partial(metric, ...))."
        )
    return scoring


def layer_speedup(exit_heads: np.ndarray, head_layers: Sequence[int]) -> float:
    """Layer-count speed-up of exits at ``exit_heads``: ``head_layers[-1] / mean(head_layers[exit_heads])``.

    Parameters
    ----------
    exit_heads : ndarray of shape (n_rows,)
        0-based exit head of each row.
    head_layers : sequence of int
        1-based encoder layer of each head.

    Returns
    -------
    float
        1.0 when every row runs to the last head.
    """
    layers = np.asarray(head_layers, dtype=np.float64)
    return float(layers[-1] / layers[np.asarray(exit_heads)].mean())


def exit_curve_from_proba(
    proba_per_head: np.ndarray,
    y: Any,
    classes: np.ndarray,
    head_layers: Sequence[int],
    criterion: ExitCriterion,
    thresholds: Sequence[float] | None = None,
    scoring: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> pd.DataFrame:
    """Score, exit layers and speed-up of each threshold, and of two oracles, from precomputed head probabilities.

    Parameters
    ----------
    proba_per_head : ndarray of shape (n_heads, n_samples, n_classes)
        Calibrated probabilities of every head (as from
        :meth:`skearly.inference.InferenceEngine.head_proba`).
    y : array-like of shape (n_samples,)
        True labels.
    classes : ndarray of shape (n_classes,)
        The labels of the probability columns.
    head_layers : sequence of int
        1-based encoder layer of each head.
    criterion : ExitCriterion
        The exit rule to replay.
    thresholds : sequence of float or None, default=None
        Thresholds in (0, 1], one row each, in the given order; ``None`` for
        :data:`DEFAULT_THRESHOLDS`.
    scoring : callable or None, default=None
        A metric called as ``scoring(y_true, y_pred)`` on labels, e.g.
        ``functools.partial(sklearn.metrics.f1_score, average="macro")``.
        ``None`` gives accuracy.

    Returns
    -------
    pandas.DataFrame
        See :meth:`skearly.EarlyExitTextClassifier.exit_curve`.
    """
    n_heads, n_rows, _ = proba_per_head.shape
    if n_heads != len(head_layers):
        raise ValueError(f"proba_per_head has {n_heads} heads but head_layers has {len(head_layers)}.")
    y = check_targets(y, n_rows)
    score = accuracy_score if scoring is None else check_metric(scoring)
    score_name = "accuracy" if scoring is None else "score"
    layers = np.asarray(head_layers, dtype=np.int64)
    predicted = np.asarray(classes)[proba_per_head.argmax(axis=2)]  # (n_heads, n_rows) labels
    rows = np.arange(n_rows)

    def record(kind: str, threshold: float, exit_heads: np.ndarray) -> dict[str, Any]:
        counts = np.bincount(exit_heads, minlength=n_heads) / n_rows
        return {
            "kind": kind,
            "threshold": threshold,
            score_name: float(score(y, predicted[exit_heads, rows])),
            "mean_exit_layer": float(layers[exit_heads].mean()),
            "expected_speedup": layer_speedup(exit_heads, layers),
            **{f"frac_layer_{layer}": float(c) for layer, c in zip(layers, counts, strict=True)},
        }

    thresholds = check_thresholds(thresholds, DEFAULT_THRESHOLDS)
    records = [record("threshold", t, simulate_exits(criterion, proba_per_head, t)) for t in thresholds]
    records.append(record("oracle", math.nan, _earliest(predicted == predicted[-1])))
    records.append(record("oracle_correct", math.nan, _earliest(predicted == y[None, :])))
    return pd.DataFrame.from_records(records)


def _earliest(hit: np.ndarray) -> np.ndarray:
    """0-based first head where ``hit`` (n_heads, n_rows) is true; the last head for rows never hit."""
    last = hit.shape[0] - 1
    return np.where(hit.any(axis=0), hit.argmax(axis=0), last).astype(np.int64)


def _candidate_thresholds(proba_per_head: np.ndarray) -> np.ndarray:
    """Thresholds at which some exit decision can change, highest first (all in (0, 1], 1.0 included).

    The top-class probabilities and the normalised-entropy confidences of the
    non-final heads (the statistics of the built-in criteria, in float32 like
    them), plus a regular grid for custom criteria.
    """
    proba = torch.as_tensor(np.asarray(proba_per_head[:-1], dtype=np.float32))
    values = [np.linspace(0.005, 1.0, 200)]
    if proba.numel():
        values.append(proba.max(dim=2).values.double().numpy().ravel())
        if proba.shape[2] > 1:
            entropy = -(proba * torch.log(proba.clamp_min(1e-12))).sum(dim=2)
            values.append((1.0 - entropy / math.log(proba.shape[2])).double().numpy().ravel())
    candidates = np.unique(np.concatenate(values + [np.ones(1)]))
    return candidates[(candidates > 0) & (candidates <= 1)][::-1]


def threshold_for_speedup(
    criterion: ExitCriterion,
    proba_per_head: np.ndarray,
    head_layers: Sequence[int],
    target_speedup: float,
) -> float:
    """The highest threshold whose layer-count speed-up on ``proba_per_head`` is at least ``target_speedup``.

    The speed-up of the built-in criteria only grows as the threshold falls, so
    a binary search over the candidate thresholds (every value at which a
    decision can change: the top-class probabilities and entropy confidences of
    the rows, plus a regular grid) finds it. When no threshold reaches the
    target (``Patience`` with long patience, say), a ``UserWarning`` is issued
    and the fastest threshold is returned.

    Parameters
    ----------
    criterion : ExitCriterion
        The exit rule.
    proba_per_head : ndarray of shape (n_heads, n_rows, n_classes)
        Calibrated probabilities of every head on held-out rows (the estimator's
        ``calibration_proba_``).
    head_layers : sequence of int
        1-based encoder layer of each head.
    target_speedup : float
        Wanted ``head_layers[-1] / mean exit layer``, in ``[1, head_layers[-1]]``.

    Returns
    -------
    float
        A threshold in (0, 1].

    Raises
    ------
    ValueError
        If there are no rows (the estimator was fitted with ``calibration_size=0``).
    """
    if proba_per_head.shape[1] == 0:
        raise ValueError(
            "target_speedup needs the calibration split's probabilities, but this model was fitted with "
            "calibration_size=0; refit with calibration_size > 0 or set a threshold instead."
        )
    candidates = _candidate_thresholds(proba_per_head)

    def speedup(index: int) -> float:
        return layer_speedup(simulate_exits(criterion, proba_per_head, float(candidates[index])), head_layers)

    fastest = len(candidates) - 1
    best = speedup(fastest)
    if best < target_speedup:
        warnings.warn(
            f"No threshold reaches a speed-up of {target_speedup:g} with {criterion!r} on the calibration data "
            f"(at most {best:.3g}); using the fastest threshold, {candidates[fastest]:.4g}.",
            UserWarning,
            stacklevel=3,
        )
        return float(candidates[fastest])
    low, high = 0, fastest  # find the first (highest) candidate reaching the target
    while low < high:
        middle = (low + high) // 2
        if speedup(middle) >= target_speedup:
            high = middle
        else:
            low = middle + 1
    return float(candidates[low])


def _check_curve_table(curve: Any) -> None:
    """Refuse a table that is not an exit curve (``ExitCurveDisplay.from_curve``), naming what is missing."""
    if not isinstance(curve, pd.DataFrame):
        raise TypeError(f"curve must be the DataFrame returned by exit_curve, got {type(curve).__name__}.")
    needed = ["kind", "threshold", "expected_speedup"]
    missing = [c for c in needed if c not in curve.columns]
    if "accuracy" not in curve.columns and "score" not in curve.columns:
        missing.append("accuracy or score")
    if missing:
        raise ValueError(
            f"curve lacks the column(s) {missing} of an exit-curve table (columns kind, threshold, accuracy or "
            f"score, expected_speedup ...: pass the DataFrame returned by exit_curve); it has {list(curve.columns)}."
        )
    if not (curve["kind"] == "threshold").any():
        raise ValueError("curve has no row of kind 'threshold': pass the DataFrame returned by exit_curve.")


class ExitCurveDisplay:
    """Speed/accuracy trade-off of one fitted early-exit model: score against layer-count speed-up.

    Build it with :meth:`from_estimator` (or :meth:`from_curve` on a table from
    :meth:`~skearly.EarlyExitTextClassifier.exit_curve`), in the style of
    :class:`sklearn.metrics.RocCurveDisplay`; the constructor only stores the data.

    Parameters
    ----------
    speedup : array-like of shape (n_thresholds,)
        Layer-count speed-up of each threshold (x axis).
    score : array-like of shape (n_thresholds,)
        Score (accuracy by default) of each threshold (y axis).
    thresholds : array-like of shape (n_thresholds,)
        The thresholds, written next to their points.
    oracle_speedup, oracle_score : float or None, default=None
        The "oracle" point (each row exits at the earliest head that agrees
        with the final head), marked with a star.
    score_name : str, default="accuracy"
        Label of the y axis.
    estimator_name : str or None, default=None
        Legend label of the curve.

    Attributes
    ----------
    line_ : matplotlib.lines.Line2D
        The curve.
    oracle_ : matplotlib.collections.PathCollection or None
        The oracle marker.
    annotations_ : list of matplotlib.text.Annotation
        The threshold labels, one per distinct point.
    ax_ : matplotlib.axes.Axes
        The axes.
    figure_ : matplotlib.figure.Figure
        The figure.

    Examples
    --------
    >>> from skearly.exit_curve import ExitCurveDisplay
    >>> ExitCurveDisplay.from_estimator(clf, X_test, y_test)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        speedup: Any,
        score: Any,
        thresholds: Any,
        oracle_speedup: float | None = None,
        oracle_score: float | None = None,
        score_name: str = "accuracy",
        estimator_name: str | None = None,
    ) -> None:
        self.speedup = np.asarray(speedup, dtype=np.float64)
        self.score = np.asarray(score, dtype=np.float64)
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.oracle_speedup = oracle_speedup
        self.oracle_score = oracle_score
        self.score_name = score_name
        self.estimator_name = estimator_name

    def plot(
        self,
        ax: Any = None,
        *,
        name: str | None = None,
        annotate: bool = True,
        **kwargs: Any,
    ) -> ExitCurveDisplay:
        """Draw the curve, the threshold labels and the oracle point.

        Parameters
        ----------
        ax : matplotlib.axes.Axes or None, default=None
            Axes to draw on; ``None`` makes a new figure.
        name : str or None, default=None
            Legend label of the curve (default: ``estimator_name``).
        annotate : bool, default=True
            Write each threshold next to its point (thresholds sharing a point
            get one label, ``"low-high"``).
        **kwargs
            Passed to :meth:`matplotlib.axes.Axes.plot` for the curve.

        Returns
        -------
        ExitCurveDisplay
            ``self``, with ``line_``, ``oracle_``, ``annotations_``, ``ax_`` and ``figure_`` set.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        name = self.estimator_name if name is None else name
        style = {"marker": "o", "label": name or "thresholds", **kwargs}
        order = np.argsort(self.speedup, kind="stable")
        (self.line_,) = ax.plot(self.speedup[order], self.score[order], **style)
        self.annotations_ = []
        if annotate:
            points: dict[tuple[float, float], list[float]] = {}  # thresholds sharing a point get one label
            for x, y, t in zip(self.speedup, self.score, self.thresholds, strict=True):
                points.setdefault((float(x), float(y)), []).append(float(t))
            for (x, y), ts in points.items():
                label = f"{ts[0]:g}" if len(ts) == 1 else f"{min(ts):g}-{max(ts):g}"
                self.annotations_.append(
                    ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
                )
        self.oracle_ = None
        if self.oracle_speedup is not None and self.oracle_score is not None:
            self.oracle_ = ax.scatter(
                [self.oracle_speedup],
                [self.oracle_score],
                marker="*",
                s=160,
                color="C3",
                zorder=3,
                label="oracle (earliest exit agreeing with the last)",
            )
        ax.set_xlabel("expected speed-up (layers, x full depth)")
        ax.set_ylabel(self.score_name)
        ax.legend(loc="lower left")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_curve(
        cls,
        curve: pd.DataFrame,
        *,
        estimator_name: str | None = None,
    ) -> ExitCurveDisplay:
        """Build the display from a table of :meth:`~skearly.EarlyExitTextClassifier.exit_curve` (no plotting).

        Parameters
        ----------
        curve : pandas.DataFrame
            The exit-curve table (its ``accuracy`` or ``score`` column is the y axis).
        estimator_name : str or None, default=None
            Legend label of the curve.

        Returns
        -------
        ExitCurveDisplay

        Raises
        ------
        TypeError
            If ``curve`` is not a DataFrame.
        ValueError
            If it lacks a column of an exit-curve table or has no threshold rows.
        """
        _check_curve_table(curve)
        score_name = "accuracy" if "accuracy" in curve.columns else "score"
        points = curve[curve["kind"] == "threshold"]
        oracle = curve[curve["kind"] == "oracle"]
        return cls(
            speedup=points["expected_speedup"].to_numpy(),
            score=points[score_name].to_numpy(),
            thresholds=points["threshold"].to_numpy(),
            oracle_speedup=float(oracle["expected_speedup"].iloc[0]) if len(oracle) else None,
            oracle_score=float(oracle[score_name].iloc[0]) if len(oracle) else None,
            score_name=score_name,
            estimator_name=estimator_name,
        )

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        X: Any,
        y: Any,
        *,
        thresholds: Sequence[float] | None = None,
        scoring: Callable[[np.ndarray, np.ndarray], float] | None = None,
        ax: Any = None,
        name: str | None = None,
        annotate: bool = True,
        **kwargs: Any,
    ) -> ExitCurveDisplay:
        """Compute the exit curve of a fitted estimator on ``(X, y)`` and plot it.

        Parameters
        ----------
        estimator : EarlyExitTextClassifier
            A fitted estimator (its ``exit_criterion`` is replayed by its
            :meth:`~skearly.EarlyExitTextClassifier.exit_curve` method).
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Held-out texts (or pairs).
        y : array-like of shape (n_samples,)
            Their labels.
        thresholds : sequence of float or None, default=None
            As in :meth:`~skearly.EarlyExitTextClassifier.exit_curve`.
        scoring : callable or None, default=None
            As in :meth:`~skearly.EarlyExitTextClassifier.exit_curve` (``None``: accuracy).
        ax : matplotlib.axes.Axes or None, default=None
            Axes to draw on; ``None`` makes a new figure.
        name : str or None, default=None
            Legend label of the curve (default: the class name and exit criterion).
        annotate : bool, default=True
            Write each threshold next to its point.
        **kwargs
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        ExitCurveDisplay
        """
        curve = estimator.exit_curve(X, y, thresholds=thresholds, scoring=scoring)
        if name is None:
            criterion = estimator.exit_criterion
            name = f"{type(estimator).__name__} ({criterion if isinstance(criterion, str) else repr(criterion)})"
        display = cls.from_curve(curve, estimator_name=name)
        return display.plot(ax=ax, annotate=annotate, **kwargs)
