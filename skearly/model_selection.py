"""Cross-validated choice of the exit threshold with one fine-tune per fold: :class:`EarlyExitThresholdCV`.

The exit threshold only acts at predict time, so a search over it needs one
fine-tune per fold, and one pass through all layers per validation fold scores
every candidate threshold (``estimator.exit_curve``). This is the same idea as
scikit-learn's :class:`~sklearn.model_selection.TunedThresholdClassifierCV`
(which tunes a binary decision threshold), applied to the exit threshold: a
scoring function plus either a speed constraint (``min_speedup``) or a minimum
score (``min_score``).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.model_selection import check_cv
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from skearly._utils.validation import check_number, check_targets, check_texts, check_thresholds
from skearly.exit_curve import check_metric

__all__ = ["SCORING", "EarlyExitThresholdCV"]

#: Scoring names accepted by :class:`EarlyExitThresholdCV`, each a metric called as ``f(y_true, y_pred)``.
SCORING: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy_score,
    "balanced_accuracy": balanced_accuracy_score,
    "f1_macro": functools.partial(f1_score, average="macro"),
    "f1_micro": functools.partial(f1_score, average="micro"),
    "f1_weighted": functools.partial(f1_score, average="weighted"),
}

_DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1.0)


def _metric(scoring: Any) -> Callable[[Any, Any], float]:
    """The metric function of ``scoring`` (a name of :data:`SCORING` or a callable)."""
    if callable(scoring):
        return check_metric(scoring)
    if isinstance(scoring, str) and scoring in SCORING:
        return SCORING[scoring]
    raise ValueError(
        f"scoring must be one of {sorted(SCORING)} or a metric function called as scoring(y_true, y_pred) "
        f"(e.g. functools.partial(sklearn.metrics.f1_score, average='macro')), got {scoring!r}."
    )


def _take(X: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of ``X`` (a pandas object, an array or a list), keeping its type."""
    if hasattr(X, "iloc"):
        return X.iloc[index]
    if isinstance(X, np.ndarray):
        return X[index]
    return [X[i] for i in index]


class EarlyExitThresholdCV(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Pick the exit threshold by cross-validation, with one fine-tune and one full-depth pass per fold.

    For each cross-validation split, a clone of ``estimator`` is fitted on the
    training part, then ``estimator.exit_curve(X_val, y_val, thresholds, scoring)``
    scores every candidate threshold on the validation part from one pass
    through all layers (each threshold gives exactly what ``predict`` would).
    The mean score and the mean layer-count speed-up over the folds decide
    :attr:`best_threshold_`, and (with ``refit=True``) a clone is fitted on all
    the data with that threshold: :attr:`best_estimator_`, which ``predict``,
    ``predict_proba``, ``predict_with_exits`` and ``score`` use.

    The choice of the threshold is, with the default rule, the one
    ``GridSearchCV(estimator, {"threshold": thresholds}, cv=cv)`` makes (given
    ``thresholds`` in increasing order), at ``n_splits`` fine-tunes plus one
    full-depth pass per fold instead of a prediction per threshold and fold.

    Parameters
    ----------
    estimator : EarlyExitTextClassifier
        The unfitted estimator; any object with ``fit``, ``set_params(threshold=...)``
        and ``exit_curve(X, y, thresholds=..., scoring=...)`` works. It is cloned,
        never fitted itself. Its ``exit_criterion`` is the rule the thresholds apply to.
    thresholds : sequence of float or None, default=None
        Candidate thresholds in (0, 1], each once; ``None`` for
        ``(0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1.0)``.
    scoring : str or callable, default="accuracy"
        The score to maximise (or to keep above ``min_score``): one of
        ``"accuracy"``, ``"balanced_accuracy"``, ``"f1_macro"``, ``"f1_micro"``,
        ``"f1_weighted"`` (see :data:`SCORING`), or a metric called as
        ``scoring(y_true, y_pred)`` on labels. Higher is better.
    min_speedup : float or None, default=None
        Keep only thresholds whose mean layer-count speed-up (``last head layer /
        mean exit layer``, averaged over the folds) is at least this, then take the
        best score among them. Exclusive with ``min_score``.
    min_score : float or None, default=None
        Keep only thresholds whose mean score is at least this, then take the
        fastest among them (highest mean speed-up). Exclusive with ``min_speedup``.
    cv : int, cross-validation generator or iterable, default=5
        As in :class:`~sklearn.model_selection.GridSearchCV`: an int gives a
        :class:`~sklearn.model_selection.StratifiedKFold` without shuffling.
    refit : bool, default=True
        Fit :attr:`best_estimator_` on all the data with the chosen threshold.
        Without it only the search results are kept and nothing can be predicted.

    Attributes
    ----------
    best_threshold_ : float
        The chosen threshold.
    best_score_ : float
        Its mean cross-validated score.
    best_speedup_ : float
        Its mean cross-validated layer-count speed-up.
    best_index_ : int
        Its position in ``thresholds`` (and in :attr:`cv_results_`).
    constraint_satisfied_ : bool
        Whether some threshold met ``min_speedup`` / ``min_score`` (always true
        without a constraint).
    cv_results_ : dict of ndarray
        One entry per threshold, in the given order, keyed like ``GridSearchCV``'s:
        ``param_threshold``, ``split<k>_test_score``, ``mean_test_score``,
        ``std_test_score``, ``rank_test_score`` (1 is best; equal scores share
        the lowest rank), ``split<k>_speedup``, ``mean_speedup``, ``std_speedup``,
        ``split<k>_mean_exit_layer`` and ``mean_exit_layer``. Load it with
        ``pandas.DataFrame(search.cv_results_)``.
    best_estimator_ : EarlyExitTextClassifier
        A clone of ``estimator`` with ``threshold=best_threshold_`` and
        ``target_speedup=None``, fitted on all the data (only with ``refit=True``).
    classes_ : ndarray of shape (n_classes,)
        The classes of :attr:`best_estimator_`.
    n_splits_ : int
        Number of cross-validation splits.

    See Also
    --------
    sklearn.model_selection.TunedThresholdClassifierCV : the same idea for a binary decision threshold.
    skearly.EarlyExitTextClassifier.exit_curve : every threshold of one fitted model from one pass.

    Notes
    -----
    Ties. Without a constraint, or with ``min_speedup``, the highest mean
    score wins; among equal scores the highest mean speed-up, then the first
    threshold in the order given. With ``min_score``, the highest mean
    speed-up wins; among equal speed-ups the highest mean score, then the first
    threshold in the order given.

    When no threshold meets the constraint, a ``UserWarning`` says so and the
    closest threshold is taken: the fastest one for ``min_speedup`` (with the
    same tie rules), the best-scoring one for ``min_score``;
    :attr:`constraint_satisfied_` is then ``False``.

    Examples
    --------
    >>> from skearly import EarlyExitTextClassifier
    >>> from skearly.model_selection import EarlyExitThresholdCV
    >>> search = EarlyExitThresholdCV(EarlyExitTextClassifier(epochs=1, random_state=0), min_speedup=2.0, cv=3)
    >>> search.fit(X_train, y_train).best_threshold_  # doctest: +SKIP
    0.8
    """

    def __init__(
        self,
        estimator: Any,
        *,
        thresholds: Sequence[float] | None = None,
        scoring: str | Callable[[Any, Any], float] = "accuracy",
        min_speedup: float | None = None,
        min_score: float | None = None,
        cv: Any = 5,
        refit: bool = True,
    ) -> None:
        self.estimator = estimator
        self.thresholds = thresholds
        self.scoring = scoring
        self.min_speedup = min_speedup
        self.min_score = min_score
        self.cv = cv
        self.refit = refit

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags = get_tags(self.estimator).input_tags
        return tags

    def _check_params(self) -> tuple[list[float], Callable[[Any, Any], float], float | None, float | None]:
        if not hasattr(self.estimator, "exit_curve") or not hasattr(self.estimator, "fit"):
            raise TypeError(
                "estimator must be an early-exit classifier with fit and exit_curve "
                f"(e.g. skearly.EarlyExitTextClassifier), got {type(self.estimator).__name__}."
            )
        if self.min_speedup is not None and self.min_score is not None:
            raise ValueError(
                "Give min_speedup or min_score, not both: one is the constraint, the other quantity is maximised."
            )
        min_speedup = (
            None if self.min_speedup is None else check_number("min_speedup", self.min_speedup, kind=float, low=1)
        )
        min_score = (
            None if self.min_score is None else check_number("min_score", self.min_score, kind=float, low=-math.inf)
        )
        thresholds = check_thresholds(self.thresholds, _DEFAULT_THRESHOLDS, unique=True)
        return thresholds, _metric(self.scoring), min_speedup, min_score

    def fit(self, X: Any, y: Any, groups: Any = None) -> EarlyExitThresholdCV:
        """Fine-tune once per fold, score every threshold on each validation fold, pick one, refit.

        Parameters
        ----------
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Training texts (or pairs).
        y : array-like of shape (n_samples,)
            Their labels.
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group-aware ``cv`` splitter.

        Returns
        -------
        EarlyExitThresholdCV
            The fitted search.
        """
        thresholds, metric, min_speedup, min_score = self._check_params()
        first, _ = check_texts(X)  # X itself is what the folds get; checked here, before any fit
        y = check_targets(y, len(first))
        splitter = check_cv(self.cv, y, classifier=True)
        scores, speedups, layers = [], [], []
        for train, test in splitter.split(np.zeros((len(y), 1)), y, groups):
            model = clone(self.estimator).fit(_take(X, train), y[train])
            curve = model.exit_curve(_take(X, test), y[test], thresholds=thresholds, scoring=metric)
            curve = curve[curve["kind"] == "threshold"]
            scores.append(curve["score"].to_numpy(dtype=np.float64))
            speedups.append(curve["expected_speedup"].to_numpy(dtype=np.float64))
            layers.append(curve["mean_exit_layer"].to_numpy(dtype=np.float64))
        self.n_splits_ = len(scores)
        self.cv_results_ = _results(thresholds, np.array(scores), np.array(speedups), np.array(layers))
        mean_score, mean_speedup = self.cv_results_["mean_test_score"], self.cv_results_["mean_speedup"]
        if min_score is None:
            allowed = mean_speedup >= min_speedup if min_speedup is not None else np.ones(len(thresholds), bool)
            self.best_index_, self.constraint_satisfied_ = _pick(mean_score, mean_speedup, allowed)
        else:
            self.best_index_, self.constraint_satisfied_ = _pick(mean_speedup, mean_score, mean_score >= min_score)
        if not self.constraint_satisfied_:
            name, value = ("min_speedup", min_speedup) if min_score is None else ("min_score", min_score)
            warnings.warn(
                f"No threshold reached {name}={value} (best mean speed-up {mean_speedup.max():.3g}, best mean "
                f"score {mean_score.max():.3g}); taking threshold {thresholds[self.best_index_]}, the closest. "
                "Add lower thresholds (for speed) or higher ones (for score), or relax the constraint.",
                UserWarning,
                stacklevel=2,
            )
        self.best_threshold_ = thresholds[self.best_index_]
        self.best_score_ = float(mean_score[self.best_index_])
        self.best_speedup_ = float(mean_speedup[self.best_index_])
        if self.refit:
            best = clone(self.estimator).set_params(threshold=self.best_threshold_)
            if "target_speedup" in best.get_params(deep=False):
                best.set_params(target_speedup=None)  # it would override the threshold
            self.best_estimator_ = best.fit(X, y)
            self.classes_ = self.best_estimator_.classes_
        return self

    def _fitted(self) -> Any:
        check_is_fitted(self, "cv_results_")
        if not hasattr(self, "best_estimator_"):
            raise AttributeError(
                "This EarlyExitThresholdCV was fitted with refit=False: it has no best_estimator_ to predict "
                "with. Refit it with refit=True, or fit the estimator with threshold=best_threshold_ yourself."
            )
        return self.best_estimator_

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes from :attr:`best_estimator_`.

        Parameters
        ----------
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Texts (or pairs).

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self._fitted().predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities from :attr:`best_estimator_`.

        Parameters
        ----------
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Texts (or pairs).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return self._fitted().predict_proba(X)

    def predict_with_exits(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Predicted classes and exit layers from :attr:`best_estimator_`.

        Parameters
        ----------
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Texts (or pairs).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        exit_layers : ndarray of shape (n_samples,)
        """
        return self._fitted().predict_with_exits(X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of :attr:`best_estimator_` on ``X`` against ``y``.

        Accuracy, whatever ``scoring`` is (as :meth:`EarlyExitTextClassifier.score`).

        Parameters
        ----------
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Texts (or pairs).
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        float
        """
        return self._fitted().score(X, y, sample_weight=sample_weight)


def _pick(primary: np.ndarray, secondary: np.ndarray, allowed: np.ndarray) -> tuple[int, bool]:
    """Index maximising ``primary`` among ``allowed``, ties broken by ``secondary``, then by order.

    With nothing allowed, maximise ``secondary`` (then ``primary``, then order) over all: the
    closest to the constraint. Returns the index and whether anything was allowed.
    """
    if allowed.any():
        keys, candidates = (primary, secondary), np.flatnonzero(allowed)
    else:
        keys, candidates = (secondary, primary), np.arange(len(primary))
    best = max(candidates, key=lambda i: (keys[0][i], keys[1][i], -i))
    return int(best), bool(allowed.any())


def _results(thresholds: list[float], scores: np.ndarray, speedups: np.ndarray, layers: np.ndarray) -> dict:
    """``cv_results_`` from per-fold arrays of shape (n_splits, n_thresholds)."""
    from scipy.stats import rankdata

    results: dict[str, Any] = {"param_threshold": np.asarray(thresholds, dtype=np.float64)}
    for name, values in (("test_score", scores), ("speedup", speedups), ("mean_exit_layer", layers)):
        for k, row in enumerate(values):
            results[f"split{k}_{name}"] = row
        if name == "mean_exit_layer":
            results[name] = np.average(values, axis=0)
        else:
            results[f"mean_{name}"] = np.average(values, axis=0)
            results[f"std_{name}"] = np.std(values, axis=0)
    results["rank_test_score"] = rankdata(-results["mean_test_score"], method="min").astype(np.int32)
    return results
