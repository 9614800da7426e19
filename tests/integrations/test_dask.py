"""Scale-out on dask (docs/scale-out.md): partitioned batch prediction and a dask-backed grid search.

A real ``LocalCluster`` of 2 worker *processes* (1 thread each) on this machine: the
workers import skearly from the same environment and read the tiny encoder's files from
the same disk. Each worker runs torch with 1 thread, so 2 workers use 2 cores and do not
oversubscribe the machine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_classifier
from joblib import parallel_backend
from sklearn.model_selection import GridSearchCV

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        client.run(torch.set_num_threads, 1)  # one core per worker process: no oversubscription
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture
def one_torch_thread():
    """The single-process reference runs with the workers' thread count (same float reductions)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_map_partitions_predict_equals_predict(client, fitted, toy_data, one_torch_thread):
    _, _, X_test, _ = toy_data
    frame = pd.DataFrame({"text": X_test, "source": np.arange(len(X_test)) % 3})
    corpus = dd.from_pandas(frame, npartitions=4)

    def predict_partition(part: pd.DataFrame, model) -> pd.DataFrame:  # as in docs/scale-out.md
        labels, layers = model.predict_with_exits(part["text"])
        return pd.DataFrame({"label": labels, "exit_layer": layers}, index=part.index)

    model = client.scatter(fitted, broadcast=True)  # one copy per worker, not one per task
    meta = pd.DataFrame({"label": np.empty(0, dtype=fitted.classes_.dtype), "exit_layer": np.empty(0, np.int64)})
    predictions = corpus.map_partitions(predict_partition, model, meta=meta).compute().sort_index()

    labels, layers = fitted.predict_with_exits(X_test)
    np.testing.assert_array_equal(predictions["label"].to_numpy(), labels)
    np.testing.assert_array_equal(predictions["exit_layer"].to_numpy(), layers)
    np.testing.assert_array_equal(predictions["label"].to_numpy(), fitted.predict(X_test))
    assert corpus.npartitions == 4 and len(predictions) == len(X_test)


def test_grid_search_with_dask_backend_matches_default(client, tiny_encoder, toy_data, one_torch_thread):
    X_train, y_train, _, _ = toy_data
    X, y = X_train[:160], y_train[:160]
    grid = {"threshold": [0.5, 0.8, 1.0]}

    def search(n_jobs: int | None) -> GridSearchCV:
        return GridSearchCV(tiny_classifier(tiny_encoder, epochs=2), grid, cv=2, n_jobs=n_jobs)

    default = search(None).fit(X, y)  # joblib's default: sequential, in this process
    with distributed.get_task_stream(client) as tasks, parallel_backend("dask"):
        on_dask = search(-1).fit(X, y)  # every (candidate, fold) fit is a task on the cluster

    assert len(tasks.data) >= len(grid["threshold"]) * 2  # the fits really ran on the workers

    assert on_dask.best_params_ == default.best_params_
    np.testing.assert_allclose(on_dask.cv_results_["mean_test_score"], default.cv_results_["mean_test_score"])
    assert on_dask.score(X_train[160:], y_train[160:]) == default.score(X_train[160:], y_train[160:])
