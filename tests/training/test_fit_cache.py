"""memory=: one fine-tune per (data, fit-time parameters), shared by every predict-time setting."""

import os
import pickle
import shutil
import warnings

import joblib
import numpy as np
import pytest
import torch
from conftest import tiny_classifier
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import skearly.training._fit_cache as fit_cache
from skearly import Entropy
from skearly._utils.validation import check_texts


@pytest.fixture(autouse=True)
def empty_in_process_layer():
    """Each test starts with no fit results kept in this process (their cache folders are fresh anyway)."""
    fit_cache.RECENT_FITS.clear()
    yield
    fit_cache.RECENT_FITS.clear()


@pytest.fixture
def disk_reads(monkeypatch):
    """Count the networks rebuilt from a snapshot (what reading a fit result from the disk cache does)."""
    calls = []
    original = fit_cache.MultiExitNetwork.from_snapshot

    def counting(snapshot):
        calls.append(1)
        return original(snapshot)

    monkeypatch.setattr(fit_cache.MultiExitNetwork, "from_snapshot", staticmethod(counting))
    return calls


@pytest.fixture
def fine_tunes(monkeypatch):
    """Count the calls of the fine-tuning loop (the expensive step the cache saves)."""
    calls = []
    original = fit_cache.train_jointly

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(fit_cache, "train_jointly", counting)
    return calls


def _clf(encoder, memory, **params):
    return tiny_classifier(encoder, memory=memory, **{"epochs": 1, **params})


def test_grid_search_over_thresholds_fine_tunes_once_per_fold(tiny_encoder, toy_data, tmp_path, fine_tunes):
    X_train, y_train, _, _ = toy_data
    grid = {"threshold": [1.0, 0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.55]}
    search = GridSearchCV(_clf(tiny_encoder, str(tmp_path)), grid, cv=3, refit=False).fit(X_train, y_train)
    assert len(fine_tunes) == 3  # not 8 x 3 = 24
    assert len(search.cv_results_["params"]) == 8
    # a second search over other predict-time settings reuses the same three fine-tunes
    GridSearchCV(
        _clf(tiny_encoder, str(tmp_path)), {"exit_criterion": ["max_proba", "entropy", "patience"]}, cv=3, refit=False
    ).fit(X_train, y_train)
    assert len(fine_tunes) == 3


def test_cached_and_uncached_fits_predict_identically(tiny_encoder, toy_data, tmp_path, fine_tunes):
    X_train, y_train, X_test, _ = toy_data
    plain = _clf(tiny_encoder, None, threshold=0.8).fit(X_train, y_train)
    first = _clf(tiny_encoder, tmp_path, threshold=0.8).fit(X_train, y_train)  # computes and stores
    second = _clf(tiny_encoder, tmp_path, threshold=0.8).fit(X_train, y_train)  # reads back
    assert len(fine_tunes) == 2
    expected = plain.predict_proba(X_test)
    for clf in (first, second):
        np.testing.assert_array_equal(clf.predict_proba(X_test), expected)
        np.testing.assert_array_equal(clf.exit_layers_, plain.exit_layers_)
        np.testing.assert_array_equal(clf.temperatures_, plain.temperatures_)
        np.testing.assert_array_equal(clf.calibration_proba_, plain.calibration_proba_)
        assert clf.loss_curve_ == plain.loss_curve_
        assert clf.calibration_report_.equals(plain.calibration_report_)
        assert clf.head_layers_ == plain.head_layers_ and clf.n_layers_ == plain.n_layers_
        np.testing.assert_array_equal(clf.classes_, plain.classes_)


@pytest.mark.parametrize(
    "change",
    [
        {"learning_rate": 1e-3},
        {"head_learning_rate": 1e-2},
        {"max_grad_norm": 1.0},
        {"epochs": 2},
        {"max_length": 16},
        {"batch_size": 32},
        {"head_layers": [2, 4]},
        {"calibration_size": 0.3},
        {"dropout": 0.2},
        {"pooling": "cls"},
        {"random_state": 1},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_fit_time_parameter_change_refits(tiny_encoder, toy_data, tmp_path, fine_tunes, change):
    X_train, y_train, _, _ = toy_data
    _clf(tiny_encoder, tmp_path).fit(X_train, y_train)
    _clf(tiny_encoder, tmp_path, **change).fit(X_train, y_train)
    assert len(fine_tunes) == 2


def test_predict_time_parameters_and_memory_object_do_not_refit(tiny_encoder, toy_data, tmp_path, fine_tunes):
    X_train, y_train, X_test, _ = toy_data
    base = _clf(tiny_encoder, tmp_path).fit(X_train, y_train)
    changes = [
        {"threshold": 0.6},
        {"exit_criterion": "entropy"},
        {"exit_criterion": Entropy()},
        {"predict_batch_size": 7},
        {"verbose": 0},
        {"target_speedup": 1.5},
        {"memory": joblib.Memory(str(tmp_path), verbose=0)},  # same cache, as a Memory object
    ]
    for change in changes:
        clf = clone(base).set_params(**change).fit(X_train, y_train)
        np.testing.assert_array_equal(clf.temperatures_, base.temperatures_)
    assert len(fine_tunes) == 1
    assert clf.predict(X_test).shape == (len(X_test),)


def test_new_data_refits(tiny_encoder, toy_data, tmp_path, fine_tunes):
    X_train, y_train, _, _ = toy_data
    _clf(tiny_encoder, tmp_path).fit(X_train, y_train)
    _clf(tiny_encoder, tmp_path).fit(X_train[:-1], y_train[:-1])  # one row fewer
    X_changed = list(X_train)
    X_changed[0] = X_changed[0] + " great"
    _clf(tiny_encoder, tmp_path).fit(X_changed, y_train)  # one text changed
    y_changed = y_train.copy()
    y_changed[0] = 1 - y_changed[0]
    _clf(tiny_encoder, tmp_path).fit(X_train, y_changed)  # one label changed
    pairs = [(text, "and so on") for text in X_train]
    _clf(tiny_encoder, tmp_path).fit(pairs, y_train)  # same first texts, now pairs
    assert len(fine_tunes) == 5
    _clf(tiny_encoder, tmp_path).fit(pairs, y_train)
    assert len(fine_tunes) == 5


def test_edited_encoder_files_refit(tiny_encoder, toy_data, tmp_path, fine_tunes):
    X_train, y_train, _, _ = toy_data
    encoder = shutil.copytree(tiny_encoder, tmp_path / "encoder")
    _clf(str(encoder), tmp_path / "cache").fit(X_train, y_train)
    _clf(str(encoder), tmp_path / "cache").fit(X_train, y_train)
    assert len(fine_tunes) == 1
    config = encoder / "config.json"
    stat = config.stat()
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # "edited" a second later
    _clf(str(encoder), tmp_path / "cache").fit(X_train, y_train)
    assert len(fine_tunes) == 2


@pytest.mark.parametrize("random_state", [None, np.random.RandomState(0)], ids=["None", "RandomState"])
def test_unseeded_fits_are_never_cached(tiny_encoder, toy_data, tmp_path, fine_tunes, random_state):
    X_train, y_train, _, _ = toy_data
    for _ in range(2):
        with pytest.warns(UserWarning, match="random_state is not an int"):
            _clf(tiny_encoder, tmp_path, random_state=random_state).fit(X_train, y_train)
    assert len(fine_tunes) == 2
    assert not list(tmp_path.rglob("output.pkl"))  # nothing stored


def test_seeded_fit_does_not_warn(tiny_encoder, toy_data, tmp_path, fine_tunes):
    X_train, y_train, _, _ = toy_data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "The calibration split has only", UserWarning)  # the toy split is tiny
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # one epoch may learn nothing measurable
        _clf(tiny_encoder, tmp_path, random_state=np.int64(3)).fit(X_train, y_train)


def test_bad_memory_is_rejected(tiny_encoder, toy_data):
    X_train, y_train, _, _ = toy_data
    with pytest.raises(ValueError, match="memory"):
        _clf(tiny_encoder, 42).fit(X_train, y_train)


def test_estimator_with_memory_pickles(tiny_encoder, toy_data, tmp_path, fine_tunes):
    X_train, y_train, X_test, _ = toy_data
    clf = _clf(tiny_encoder, joblib.Memory(tmp_path, verbose=0), threshold=0.8).fit(X_train, y_train)
    clf = _clf(tiny_encoder, joblib.Memory(tmp_path, verbose=0), threshold=0.8).fit(X_train, y_train)  # from cache
    assert list(tmp_path.rglob("output.pkl"))
    assert len(fine_tunes) == 1
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))


def test_cache_entry_holds_cpu_weights_and_no_live_network(tiny_encoder, toy_data, fine_tunes):
    X_train, y_train, _, _ = toy_data
    params = fit_cache.FitParams(
        encoder_path=tiny_encoder,
        encoder_identity=fit_cache.encoder_identity(tiny_encoder),
        head_layers=(1, 2, 3, 4),
        max_length=128,
        batch_size=16,
        epochs=1,
        learning_rate=3e-3,
        weight_decay=0.01,
        warmup_ratio=0.1,
        calibration_size=0.2,
        pooling="mean",
        dropout=0.1,
        seed=0,
        device_type="cpu",
        mixed_precision=True,
    )
    assert any(name == "config.json" for name, _, _ in params.encoder_identity)
    result = fit_cache.fit_network(*check_texts(X_train), y_train, params, device=torch.device("cpu"))
    state = result.__getstate__()
    assert isinstance(state["network"], dict)
    assert all(t.device.type == "cpu" for t in state["network"]["state_dict"].values())
    restored = pickle.loads(pickle.dumps(result))
    for (name, a), (_, b) in zip(result.network.state_dict().items(), restored.network.state_dict().items()):
        assert np.array_equal(a.numpy(), b.numpy()), name


def test_parallel_candidates_of_a_fold_wait_for_one_fine_tune(tiny_encoder, toy_data, tmp_path, fine_tunes):
    X_train, y_train, _, _ = toy_data
    grid = {"threshold": [1.0, 0.9, 0.8, 0.7]}
    with joblib.parallel_backend("threading", n_jobs=4):
        GridSearchCV(_clf(tiny_encoder, tmp_path), grid, cv=2, refit=False, n_jobs=4).fit(X_train, y_train)
    assert len(fine_tunes) == 2  # candidates of one fold running together share one fine-tune


def test_candidates_share_the_fit_in_process_without_reading_the_disk(
    tiny_encoder, toy_data, tmp_path, fine_tunes, disk_reads
):
    X_train, y_train, X_test, _ = toy_data
    hits = fit_cache.RECENT_FITS.hits
    grid = {"threshold": [1.0, 0.9, 0.8, 0.7]}
    GridSearchCV(_clf(tiny_encoder, tmp_path), grid, cv=3, refit=False).fit(X_train, y_train)
    assert len(fine_tunes) == 3
    assert fit_cache.RECENT_FITS.hits - hits == 3 * 3  # every candidate after the first of each fold
    assert not disk_reads  # nothing unpickled: the folds were kept in memory
    # a new process would read the disk: simulate it by emptying the in-process layer
    fit_cache.RECENT_FITS.clear()
    _clf(tiny_encoder, tmp_path).fit(X_train, y_train)
    _clf(tiny_encoder, tmp_path).fit(X_train, y_train)
    assert len(fine_tunes) == 4 and len(disk_reads) == 0  # all rows: a new key, fitted then kept
    fit_cache.RECENT_FITS.clear()
    _clf(tiny_encoder, tmp_path).fit(X_train, y_train)
    assert len(fine_tunes) == 4 and len(disk_reads) == 1


def test_estimators_served_in_process_do_not_share_weights(tiny_encoder, toy_data, tmp_path, fine_tunes):
    X_train, y_train, X_test, _ = toy_data
    hits = fit_cache.RECENT_FITS.hits
    first = _clf(tiny_encoder, tmp_path, threshold=1.0).fit(X_train, y_train)
    expected = first.predict_proba(X_test)
    with torch.no_grad():
        for parameter in first.network_.parameters():
            parameter.add_(1.0)  # a user changing one fitted estimator's weights by hand
    second = _clf(tiny_encoder, tmp_path, threshold=1.0).fit(X_train, y_train)
    assert len(fine_tunes) == 1 and fit_cache.RECENT_FITS.hits == hits + 1
    assert second.network_ is not first.network_
    np.testing.assert_array_equal(second.predict_proba(X_test), expected)


def test_in_process_layer_is_bounded():
    layer = fit_cache.RecentFits(max_entries=2, max_bytes=10**12)
    results = [_tiny_result(seed) for seed in range(3)]
    for key, result in zip("abc", results):
        layer.put(key, result)
    assert len(layer) == 2 and layer.get("a") is None  # least recently used left first
    copy_b = layer.get("b")
    assert copy_b is not None and copy_b.network is not results[1].network
    assert copy_b.tokenizer is results[1].tokenizer
    small = fit_cache.RecentFits(max_entries=8, max_bytes=1)  # over the byte budget: only the newest stays
    for key, result in zip("abc", results):
        small.put(key, result)
    assert len(small) == 1 and small.get("c") is not None


def _tiny_result(seed):
    torch.manual_seed(seed)
    network = torch.nn.Linear(2, 2)
    return fit_cache.FitResult(
        classes=np.arange(2),
        n_layers=1,
        head_layers=(1,),
        network=network,
        tokenizer=object(),
        temperatures=np.ones(1),
        calibration_report=None,
        calibration_proba=np.zeros((1, 0, 2)),
        loss_curve=[],
        calibration_inputs=None,
    )


def test_fit_runs_each_layer_once_per_training_batch_and_once_per_calibration_batch(
    tiny_encoder, toy_data, monkeypatch
):
    """No wasted passes: the encoder runs for the training steps and one calibration pass, nothing more."""
    X_train, y_train, _, _ = toy_data
    calls = {"embed": 0, "layer": 0}
    network_class = fit_cache.MultiExitNetwork
    embed, run_layer = network_class.embed, network_class.run_layer

    def counting_embed(self, *args, **kwargs):
        calls["embed"] += 1
        return embed(self, *args, **kwargs)

    def counting_layer(self, *args, **kwargs):
        calls["layer"] += 1
        return run_layer(self, *args, **kwargs)

    monkeypatch.setattr(network_class, "embed", counting_embed)
    monkeypatch.setattr(network_class, "run_layer", counting_layer)
    clf = tiny_classifier(tiny_encoder, epochs=3, batch_size=16, calibration_size=0.2).fit(X_train, y_train)
    n_calibration = len(clf.calibration_inputs_["labels"])
    n_train = len(X_train) - n_calibration
    batches = 3 * -(-n_train // 16) + -(-n_calibration // 16)
    assert calls == {"embed": batches, "layer": batches * clf.network_.n_layers_used}


def test_group_by_length_and_the_training_precision_are_part_of_the_key(tiny_encoder, toy_data, tmp_path, fine_tunes):
    X_train, y_train, _, _ = toy_data
    for params in ({}, {"group_by_length": False}, {"mixed_precision": False}, {}):
        tiny_classifier(tiny_encoder, epochs=1, memory=str(tmp_path)).set_params(**params).fit(X_train, y_train)
    from skearly._utils.devices import cpu_has_native_bf16

    # the last fit repeats the first; mixed_precision changes the fit only where this CPU computes in bf16
    assert len(fine_tunes) == (3 if cpu_has_native_bf16() else 2)
