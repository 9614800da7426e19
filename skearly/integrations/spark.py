"""Batch prediction over a Spark DataFrame: :func:`predict_spark` (``pip install 'skearly[spark]'``).

The model travels to the executors once, either as a Spark broadcast of the
fitted estimator or as the pickle-free folder written by
:meth:`skearly.EarlyExitTextClassifier.save` on storage every executor reads;
each Python worker then predicts its partitions Arrow batch by Arrow batch with
``DataFrame.mapInPandas``. See ``docs/scale-out.md`` for the thread layout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skearly._utils.optional import import_optional
from skearly._utils.validation import TextRowError
from skearly.integrations._serving import predict_all

__all__ = ["predict_spark"]

_LOADED: dict[str, Any] = {}  # folder -> estimator, one load per Python worker process


def _from_folder(folder: str) -> Any:
    """The estimator saved in ``folder``, loaded once per process."""
    if folder not in _LOADED:
        from skearly.estimator import EarlyExitTextClassifier

        _LOADED[folder] = EarlyExitTextClassifier.load(folder)
    return _LOADED[folder]


def _model_of(source: Any) -> Any:
    """The estimator from a folder path (str) or from a Spark broadcast of it."""
    return _from_folder(source) if isinstance(source, str) else source.value


def _predict_batches(
    batches: Iterator[pd.DataFrame],
    source: Any,
    text_cols: list[str],
    out_cols: tuple[str, str, str],
    torch_threads: int,
) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: run on the executors, one call per partition."""
    import torch

    torch.set_num_threads(torch_threads)
    model = _model_of(source)
    prediction_col, probability_col, exit_layer_col = out_cols
    offset = 0  # rows of this partition already predicted (Arrow batches split a partition)
    for frame in batches:
        if len(frame) == 0:
            continue
        X = frame[text_cols[0]] if len(text_cols) == 1 else frame[text_cols]
        try:
            labels, proba, layers = predict_all(model, X)
        except TextRowError as exc:
            raise ValueError(
                f"text_col {text_cols} at row {offset + exc.row} of Spark partition {_partition_id()} (0-based, in "
                f"the partition's order; filter or fill nulls first, e.g. sdf.na.fill('')): {exc}"
            ) from None
        offset += len(frame)
        yield frame.assign(
            **{
                prediction_col: labels,
                probability_col: list(proba.astype(np.float64)),
                exit_layer_col: layers,
            }
        )


def _partition_id() -> int | str:
    """The running Spark task's partition number ("?" outside a task)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    return "?" if context is None else context.partitionId()


def _spark_type(classes: np.ndarray, types: Any) -> Any:
    """The Spark SQL type of the labels in ``classes``."""
    kind = classes.dtype.kind
    if kind in "iu":
        return types.LongType()
    if kind == "f":
        return types.DoubleType()
    if kind == "b":
        return types.BooleanType()
    if kind in "SU" or all(isinstance(c, str) for c in classes):
        return types.StringType()
    raise TypeError(
        f"The model's classes_ have dtype {classes.dtype}, which has no Spark column type here: "
        "refit with integer or string labels."
    )


def predict_spark(
    model: Any,
    sdf: Any,
    text_col: str | Sequence[str],
    *,
    prediction_col: str = "prediction",
    probability_col: str = "probability",
    exit_layer_col: str = "exit_layer",
    torch_threads: int | None = None,
) -> Any:
    """Predict a text column of a Spark DataFrame with a fitted early-exit classifier.

    Lazily adds three columns to ``sdf`` (Spark runs nothing until an action such
    as ``write`` or ``collect``): the predicted label, the probabilities and the
    exit layer of each row. They equal a single-process
    ``predict_proba`` / ``predict_with_exits`` on the same rows (up to float
    rounding from different batch padding in the probabilities).

    Parameters
    ----------
    model : EarlyExitTextClassifier, str or path-like
        A fitted estimator, shipped to the executors once as a Spark broadcast
        (pickled; needs a classic Spark session with a ``SparkContext``), or
        the folder written by :meth:`~skearly.EarlyExitTextClassifier.save`,
        which each Python worker reads once with
        :meth:`~skearly.EarlyExitTextClassifier.load` (no pickle; the folder
        must be readable at the same path by every executor: shared storage, or
        local mode). The driver reads the folder too, for the label type.
    sdf : pyspark.sql.DataFrame
        The data; every column is kept.
    text_col : str or sequence of 2 str
        The text column, or the two columns of text pairs.
    prediction_col : str, default="prediction"
        Name of the label column (long, double, boolean or string, as the
        model's ``classes_``).
    probability_col : str, default="probability"
        Name of the probabilities column: ``array<double>``, in the order of
        the model's ``classes_``.
    exit_layer_col : str, default="exit_layer"
        Name of the exit layer column (long): the 1-based encoder layer at
        which each row exited.
    torch_threads : int or None, default=None
        torch intra-op threads in each task; ``None`` uses ``spark.task.cpus``
        (1 unless set), so that concurrent tasks × threads never exceed the
        executor's cores.

    Returns
    -------
    pyspark.sql.DataFrame
        ``sdf`` with the three columns appended.

    Raises
    ------
    ImportError
        If pyspark is not installed (``pip install 'skearly[spark]'``).
    TypeError
        If ``sdf`` is not a Spark DataFrame (a pandas one: call ``predict`` on it), or
        ``text_col`` is not a column name or a sequence of 2 of them.
    ValueError
        If ``text_col`` is missing from ``sdf`` or an output column already exists;
        when the result is computed, a null text, named by its row in its partition.
    """
    import_optional("pyspark.sql", extra="spark", purpose="skearly.integrations.spark.predict_spark")
    types = import_optional("pyspark.sql.types", extra="spark", purpose="skearly.integrations.spark.predict_spark")
    if not hasattr(sdf, "mapInPandas") or not hasattr(sdf, "sparkSession"):
        raise TypeError(
            f"sdf must be a pyspark.sql.DataFrame, got {type(sdf).__module__}.{type(sdf).__name__}: for a pandas "
            "DataFrame, call model.predict(df[text_col]) (or predict_with_exits) directly."
        )
    names = [text_col] if isinstance(text_col, str) else text_col if isinstance(text_col, list | tuple) else []
    text_cols = list(names)
    if not text_cols or not all(isinstance(c, str) for c in text_cols):
        raise TypeError(f"text_col must be a column name or a list of 2 column names (text pairs), got {text_col!r}.")
    if len(text_cols) not in (1, 2):
        raise ValueError(f"text_col must be a column name or 2 column names (text pairs), got {text_col!r}.")
    missing = [c for c in text_cols if c not in sdf.columns]
    if missing:
        raise ValueError(f"text_col {missing} not among the DataFrame's columns {sdf.columns}.")
    out_cols = (prediction_col, probability_col, exit_layer_col)
    taken = [c for c in out_cols if c in sdf.columns]
    if taken or len(set(out_cols)) != 3:
        raise ValueError(
            f"Output columns {list(out_cols)} must be 3 distinct names not already in the DataFrame "
            f"(taken: {taken}): pass other prediction_col / probability_col / exit_layer_col."
        )
    if torch_threads is None:
        torch_threads = int(sdf.sparkSession.conf.get("spark.task.cpus", "1"))
    if isinstance(torch_threads, bool) or not isinstance(torch_threads, int) or torch_threads < 1:
        raise ValueError(f"torch_threads must be a positive int or None, got {torch_threads!r}.")

    if isinstance(model, (str, os.PathLike)):
        source = str(Path(model).resolve())
        fitted = _from_folder(source)
    else:
        if not hasattr(model, "classes_"):
            raise ValueError("model must be a fitted estimator (call fit first) or a folder written by save().")
        fitted = model
        source = sdf.sparkSession.sparkContext.broadcast(model)
    schema = types.StructType(
        [
            *sdf.schema.fields,
            types.StructField(prediction_col, _spark_type(np.asarray(fitted.classes_), types)),
            types.StructField(probability_col, types.ArrayType(types.DoubleType())),
            types.StructField(exit_layer_col, types.LongType()),
        ]
    )

    def predict_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return _predict_batches(batches, source, text_cols, out_cols, torch_threads)

    return sdf.mapInPandas(predict_partition, schema=schema)
