"""MLflow round trip with a local file store: mlflow.sklearn.log_model, pyfunc load, equal predictions."""

from __future__ import annotations

import importlib
import os
import sys

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before mlflow is imported: no usage reports
os.environ.setdefault("DO_NOT_TRACK", "true")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("mlflow")
import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import mlflow.sklearn  # noqa: E402

import skearly.integrations.mlflow as skearly_mlflow  # noqa: E402

pytestmark = pytest.mark.integration

REQUIREMENTS = ["skearly", "scikit-learn", "torch"]  # given, so MLflow does not infer them in a subprocess


@pytest.fixture
def file_store(tmp_path, monkeypatch):
    """A local file tracking store under tmp_path, for the duration of one test."""
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the file store is in maintenance mode since MLflow 3.7
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


def test_sklearn_flavor_round_trip(file_store, fitted, toy_data):
    _, _, X_test, _ = toy_data
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            fitted, name="model", serialization_format="cloudpickle", pip_requirements=REQUIREMENTS
        )
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    expected = fitted.predict(X_test)
    np.testing.assert_array_equal(np.asarray(loaded.predict(pd.Series(X_test))), expected)
    np.testing.assert_array_equal(np.asarray(loaded.predict(pd.DataFrame({"text": X_test}))), expected)
    sk_model = mlflow.sklearn.load_model(info.model_uri)  # the estimator itself: exit layers too
    labels, layers = sk_model.predict_with_exits(X_test)
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(layers, fitted.predict_with_exits(X_test)[1])


def test_exit_pyfunc_round_trip(file_store, fitted, toy_data):
    _, _, X_test, _ = toy_data
    with mlflow.start_run():
        info = skearly_mlflow.log_model(fitted, name="exits", pip_requirements=REQUIREMENTS)
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    for model_input in (pd.Series(X_test), pd.DataFrame({"text": X_test})):
        out = loaded.predict(model_input)
        assert list(out.columns) == ["prediction", "exit_layer", *(f"proba_{c}" for c in fitted.classes_)]
        labels, layers = fitted.predict_with_exits(X_test)
        np.testing.assert_array_equal(out["prediction"].to_numpy(), labels)
        np.testing.assert_array_equal(out["exit_layer"].to_numpy(), layers)
        np.testing.assert_allclose(out.filter(like="proba_").to_numpy(), fitted.predict_proba(X_test), atol=1e-6)


def test_exit_pyfunc_refuses_an_extra_column(file_store, fitted, toy_data):
    _, _, X_test, _ = toy_data
    with mlflow.start_run():
        info = skearly_mlflow.log_model(fitted, name="exits", pip_requirements=REQUIREMENTS)
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    with pytest.raises(ValueError, match="holds text pairs.*fitted on single texts"):
        loaded.predict(pd.DataFrame({"text": X_test, "source": ["web"] * len(X_test)}))


def test_missing_mlflow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)
    monkeypatch.delitem(sys.modules, "skearly.integrations.mlflow")
    with pytest.raises(ImportError, match=r"pip install 'skearly\[mlflow\]'"):
        importlib.import_module("skearly.integrations.mlflow")
