"""predict_spark on a real local[2] Spark session: the same labels, probabilities and exit layers as one process.

Spark runs on loopback only (SPARK_LOCAL_IP / spark.driver.host = 127.0.0.1, no UI); the Python
workers run this interpreter (PYSPARK_PYTHON). Needs Java 17+ and ``pip install 'skearly[spark]'``.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from skearly.integrations.spark import predict_spark  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as env:
        env.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        env.setenv("PYSPARK_PYTHON", sys.executable)
        env.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("skearly-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", "25")  # several Arrow batches per partition
            .getOrCreate()
        )
        yield session
        session.stop()


@pytest.fixture(scope="module")
def texts_frame(spark, toy_data):
    _, _, X_test, _ = toy_data
    sdf = spark.createDataFrame(pd.DataFrame({"id": np.arange(len(X_test)), "text": X_test}))
    return sdf.repartition(2, "id")


def _check_equal_to_one_process(result: pd.DataFrame, model, X) -> None:
    result = result.sort_values("id").reset_index(drop=True)
    proba = model.predict_proba(X)
    labels, layers = model.predict_with_exits(X)
    assert list(result["text"]) == list(X)
    np.testing.assert_array_equal(result["prediction"].to_numpy(), labels)
    np.testing.assert_array_equal(result["exit_layer"].to_numpy(), layers)
    np.testing.assert_allclose(np.stack(result["probability"].to_numpy()), proba, atol=1e-6)


def test_broadcast_model_equals_single_process(texts_frame, fitted, toy_data):
    assert texts_frame.rdd.getNumPartitions() == 2
    out = predict_spark(fitted, texts_frame, "text")
    assert out.columns == ["id", "text", "prediction", "probability", "exit_layer"]
    assert dict(out.dtypes)["prediction"] == "bigint"
    _check_equal_to_one_process(out.toPandas(), fitted, toy_data[2])


def test_saved_folder_equals_single_process(texts_frame, fitted, toy_data, tmp_path):
    folder = fitted.save(tmp_path / "model")
    out = predict_spark(folder, texts_frame, "text", prediction_col="label", exit_layer_col="layer").toPandas()
    out = out.rename(columns={"label": "prediction", "layer": "exit_layer"})
    _check_equal_to_one_process(out, fitted, toy_data[2])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(text_col="body"), "not among the DataFrame's columns"),
        (dict(text_col="text", prediction_col="id"), "already in the DataFrame"),
        (dict(text_col="text", exit_layer_col="prediction"), "3 distinct names"),
        (dict(text_col=["text", "id", "id"]), "2 column names"),
        (dict(text_col="text", torch_threads=0), "torch_threads"),
    ],
)
def test_bad_arguments(texts_frame, fitted, kwargs, match):
    with pytest.raises(ValueError, match=match):
        predict_spark(fitted, texts_frame, **kwargs)


@pytest.mark.parametrize("text_col", [None, 3, {"text": 1}, ["text", 2]])
def test_text_col_of_the_wrong_type_is_a_type_error(texts_frame, fitted, text_col):
    with pytest.raises(TypeError, match="text_col must be a column name or a list of 2 column names"):
        predict_spark(fitted, texts_frame, text_col)


def test_a_pandas_dataframe_is_refused_with_what_to_do(fitted, toy_data):
    frame = pd.DataFrame({"text": toy_data[2]})
    with pytest.raises(TypeError, match=r"sdf must be a pyspark.sql.DataFrame, got pandas.*model.predict"):
        predict_spark(fitted, frame, "text")


def test_a_null_row_is_named_by_its_place_in_the_data(spark, fitted, toy_data):
    texts = list(toy_data[2][:80])
    texts[60] = None  # third Arrow batch of 25 rows: row 10 of that batch
    sdf = spark.createDataFrame(pd.DataFrame({"id": np.arange(80), "text": texts})).coalesce(1)
    with pytest.raises(Exception, match=r"text_col \['text'\] at row 60 of Spark partition 0.*X\[10\] is missing"):
        predict_spark(fitted, sdf, "text").collect()


def test_unfitted_model_is_refused(texts_frame, tiny_encoder):
    from skearly import EarlyExitTextClassifier

    with pytest.raises(ValueError, match="fitted"):
        predict_spark(EarlyExitTextClassifier(tiny_encoder), texts_frame, "text")


def test_missing_pyspark_names_the_extra(monkeypatch, fitted):
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(ImportError, match=r"pip install 'skearly\[spark\]'"):
        predict_spark(fitted, None, "text")
