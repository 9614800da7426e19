"""Input and parameter checks with errors that name the bad row or parameter."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.exceptions import DataConversionWarning

_STRING_TYPES = (str, np.str_)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and np.isnan(value)


class TextRowError(ValueError):
    """A ``ValueError`` about one row of ``X`` (a missing or invalid text); ``row`` is its 0-based index in ``X``.

    Callers that feed ``X`` in pieces (the Spark integration) use ``row`` to name the row's place in their data.
    """

    def __init__(self, message: str, row: int) -> None:
        super().__init__(message)
        self.row = row


def _check_text(value: Any, where: str, row: int) -> str:
    if isinstance(value, _STRING_TYPES):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise TextRowError(
                    f"{where} is not valid Unicode text: it holds an unpaired surrogate "
                    f"{value[exc.start]!r} at position {exc.start} (was it decoded with errors='surrogateescape'?).",
                    row,
                ) from None
        return str(value)
    if _is_missing(value):
        raise TextRowError(
            f"{where} is missing ({value!r}); every text must be a string (use '' for an empty text).", row
        )
    raise TypeError(f"{where} must be a string, got {type(value).__name__}: {value!r:.60}.")


def _rows(X: Any) -> tuple[list[Any], bool]:
    """Return the rows of X as a list, and whether X is explicitly 2-column (pairs)."""
    if X is None:
        raise TypeError("X must be a sequence of strings or of (text, text) pairs, got None.")
    if isinstance(X, (str, bytes, np.str_)):
        raise TypeError("X must be a sequence of strings, got a single string: wrap it in a list, e.g. [text].")
    if scipy.sparse.issparse(X):
        raise TypeError("Sparse input is not supported: X must hold texts (strings), not a sparse matrix.")
    if not isinstance(X, (Sequence, np.ndarray, pd.Series, pd.DataFrame)) and hasattr(X, "__array__"):
        X = np.asarray(X)
    if isinstance(X, dict):
        raise TypeError("X must be a sequence of strings or of (text, text) pairs, got a dict.")
    if isinstance(X, pd.DataFrame):
        if X.shape[1] == 1:
            return X.iloc[:, 0].tolist(), False
        if X.shape[1] == 2:
            return list(zip(X.iloc[:, 0].tolist(), X.iloc[:, 1].tolist(), strict=True)), True
        raise ValueError(f"A DataFrame X must have 1 text column or 2 columns (text pairs), got {X.shape[1]} columns.")
    if isinstance(X, pd.Series):
        return X.tolist(), False
    if isinstance(X, np.ndarray):
        if X.ndim == 1:
            return X.tolist(), False
        if X.ndim == 2 and X.shape[1] == 1:
            return X[:, 0].tolist(), False
        if X.ndim == 2 and X.shape[1] == 2:
            return [tuple(row) for row in X.tolist()], True
        raise ValueError(
            f"An array X must be 1-D (texts) or 2-D with 1 or 2 columns (texts or text pairs), got shape {X.shape}."
        )
    if not isinstance(X, Sequence):
        hint = (
            " Iterators and generators are not accepted, so that a stream is never loaded into memory at once "
            "behind your back: pass list(X), or predict a long stream chunk by chunk (itertools.islice)."
            if hasattr(X, "__iter__") or hasattr(X, "__next__")
            else ""
        )
        raise TypeError(
            f"X must be a list, tuple, numpy array, pandas Series or DataFrame of texts, got {type(X).__name__}.{hint}"
        )
    return list(X), False


def input_kind(X: Any, second: list[str] | None) -> dict[str, Any]:
    """What a model is fitted on, as :func:`check_texts` checks it later: texts or pairs, and DataFrame columns.

    Parameters
    ----------
    X : the validated input
        The input ``fit`` was given.
    second : list of str or None
        The second texts :func:`check_texts` returned (``None`` for single texts).

    Returns
    -------
    dict
        ``{"pairs": bool, "columns": list of str or None}`` (the DataFrame's column names, else ``None``).
    """
    columns = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
    return {"pairs": second is not None, "columns": columns}


def _check_kind(X: Any, pairs: bool, fitted: dict[str, Any]) -> None:
    """Refuse input of another kind than the model was fitted on (see :func:`input_kind`)."""
    fitted_pairs, fitted_columns = bool(fitted["pairs"]), fitted["columns"]
    what = "text pairs (2 texts per row)" if fitted_pairs else "single texts (1 text per row)"
    if pairs != fitted_pairs:
        shape = "2-column DataFrame or array, or (text, text) pairs" if pairs else "single texts"
        raise ValueError(
            f"X holds {'text pairs' if pairs else 'single texts'} ({shape}), but this model was fitted on {what}"
            f"{f' from the DataFrame columns {fitted_columns}' if fitted_columns else ''}: pass {what}."
        )
    if fitted_columns is not None and isinstance(X, pd.DataFrame):
        columns = [str(c) for c in X.columns]
        if columns != fitted_columns:
            raise ValueError(
                f"X has the columns {columns}, but this model was fitted on a DataFrame with the columns "
                f"{fitted_columns}: pass those columns, in that order."
            )


def check_texts(X: Any, fitted_kind: dict[str, Any] | None = None) -> tuple[list[str], list[str] | None]:
    """Validate X as single texts or text pairs.

    Parameters
    ----------
    X : sequence of str, sequence of (str, str), 1-D/2-D array, Series or DataFrame
        Single texts (1-D) or sentence pairs (2-tuples, or a 2-column array/DataFrame).
    fitted_kind : dict or None, default=None
        What the model was fitted on (:func:`input_kind`); ``X`` must be of the same
        kind (texts or pairs; for a DataFrame fit and a DataFrame ``X``, the same columns).

    Returns
    -------
    first : list of str
        The texts (or the first text of each pair).
    second : list of str or None
        The second text of each pair, ``None`` for single texts.

    Raises
    ------
    ValueError
        Empty X, missing values (None/NaN), pairs of the wrong length, a mix of texts and pairs,
        or input of another kind than ``fitted_kind``.
    TypeError
        X of the wrong kind, or an item that is not a string.
    """
    rows, pairs = _rows(X)
    if len(rows) == 0:
        raise ValueError("X is empty: it needs at least one text.")
    first_is_pair = isinstance(rows[0], (tuple, list))
    if fitted_kind is not None:
        _check_kind(X, pairs or first_is_pair, fitted_kind)
    if not pairs and not first_is_pair:
        return [_check_text(value, f"X[{i}]", i) for i, value in enumerate(rows)], None
    first, second = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, (tuple, list, np.ndarray)):
            raise TypeError(f"X[{i}] must be a (text, text) pair like X[0], got {type(row).__name__}: {row!r:.60}.")
        if len(row) != 2:
            raise ValueError(f"X[{i}] must be a pair of 2 texts, got {len(row)} items.")
        first.append(_check_text(row[0], f"X[{i}][0]", i))
        second.append(_check_text(row[1], f"X[{i}][1]", i))
    return first, second


def check_targets(y: Any, n_samples: int) -> np.ndarray:
    """Validate classification targets: 1-D, same length as X, no missing values, at least 2 classes.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    if y is None:
        raise ValueError("This classifier requires y to be passed, but the target y is None.")
    y_array = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y, dtype=object)
    if y_array.ndim == 2 and y_array.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; it was ravelled.",
            DataConversionWarning,
            stacklevel=3,
        )
        y_array = y_array[:, 0]
    if y_array.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per text), got shape {y_array.shape}.")
    if len(y_array) != n_samples:
        raise ValueError(f"X and y have different lengths: {n_samples} texts but {len(y_array)} labels.")
    missing = [i for i, value in enumerate(y_array) if _is_missing(value)]
    if missing:
        raise ValueError(f"y has missing labels (None/NaN) at rows {missing[:10]}.")
    kinds = {type(value) for value in y_array}
    numeric = all(issubclass(k, numbers.Real) and not issubclass(k, (bool, np.bool_)) for k in kinds)
    strings = all(issubclass(k, (str, np.str_)) for k in kinds)
    booleans = all(issubclass(k, (bool, np.bool_)) for k in kinds)
    if not (numeric or strings or booleans):
        names = sorted({k.__name__ for k in kinds})
        if len(names) == 1:
            raise TypeError(f"y must hold labels that are real numbers or strings, got {names[0]}.")
        raise TypeError(f"y must hold labels of one kind (all numbers or all strings), got a mix of {names}.")
    if numeric:
        too_big = [i for i, value in enumerate(y_array) if abs(value) >= 2**63 and not np.isinf(float(value))]
        if too_big:
            raise ValueError(f"y has labels outside the 64-bit integer range at rows {too_big[:10]}: use strings.")
        values = np.asarray(y_array.tolist())
        if values.dtype.kind == "O":  # other real types, e.g. fractions.Fraction
            values = values.astype(np.float64)
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            raise ValueError("y has infinite values.")
        if values.dtype.kind == "f" and not np.all(values == np.round(values)):
            raise ValueError("y looks continuous (non-integer floats): this is a classifier, not a regressor.")
        return values
    return np.asarray(y_array.tolist())


# encoders whose position ids start after the padding index (RoBERTa's scheme): fewer usable positions
_PADDING_OFFSET_MODELS = frozenset(
    {"roberta", "xlm-roberta", "camembert", "data2vec-text", "roberta-prelayernorm", "xmod", "mpnet"}
)


def check_max_length(max_length: int, config: Any) -> int:
    """Check that ``max_length`` tokens fit the encoder's position embeddings (``config`` is its HF config).

    Raises
    ------
    ValueError
        If ``max_length`` is more than the encoder can take: longer inputs would crash it.
    """
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int):
        return max_length
    if getattr(config, "model_type", None) in _PADDING_OFFSET_MODELS:
        limit -= int(getattr(config, "pad_token_id", 0) or 0) + 1
    if max_length > limit:
        raise ValueError(
            f"max_length={max_length} is more than this encoder takes ({limit} tokens): pass max_length<={limit}."
        )
    return max_length


def check_threshold(threshold: Any) -> float:
    """Return ``threshold`` as a float in (0, 1], or raise a ``ValueError``/``TypeError`` naming it."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a real number in (0, 1], got {type(threshold).__name__}.")
    value = float(threshold)
    if not 0.0 < value <= 1.0:  # also rejects NaN
        raise ValueError(f"threshold must be in (0, 1] (1.0 = never exit early), got {threshold!r}.")
    return value


def check_thresholds(thresholds: Any, default: Sequence[float], *, unique: bool = False) -> list[float]:
    """Return ``thresholds`` (``default`` when ``None``) as a non-empty list of floats in (0, 1].

    With ``unique``, a repeated value is refused too.
    """
    if thresholds is None:
        return [float(t) for t in default]
    if isinstance(thresholds, (str, bytes)) or not hasattr(thresholds, "__iter__"):
        raise TypeError(f"thresholds must be a sequence of numbers in (0, 1] or None, got {thresholds!r}.")
    values = [check_threshold(t) for t in thresholds]
    if not values:
        raise ValueError("thresholds is empty: give at least one threshold in (0, 1].")
    if unique and len(set(values)) != len(values):
        raise ValueError(f"thresholds holds repeated values {values}: give each threshold once.")
    return values


def check_number(
    name: str,
    value: Any,
    *,
    kind: type,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> Any:
    """Check that parameter ``name`` is a ``kind`` (int or float) in the given range.

    With ``optional``, ``None`` is accepted too (and returned as it is).
    """
    if optional and value is None:
        return None
    wrong_type = isinstance(value, bool) or not isinstance(value, numbers.Integral if kind is int else numbers.Real)
    if wrong_type:
        raise TypeError(f"{name} must be {'an int' if kind is int else 'a real number'}, got {value!r}.")
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high or value != value:
        left = "(" if low_open else "["
        right = "" if high is None else f"{high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {left}{low}, {right or 'inf)'}, got {value!r}.")
    return kind(value)
