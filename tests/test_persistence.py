"""Pickle-free save/load (safetensors + JSON), checked in a fresh Python process."""

import copy
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_classifier
from sklearn.exceptions import NotFittedError

from skearly import EarlyExitTextClassifier, ExitCriterion, Patience
from skearly.persistence import CONFIG_FILE, FORMAT_VERSION, METADATA_FILE, TOKENIZER_DIR, WEIGHTS_FILE

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".bin", ".pt", ".pth", ".npy", ".npz"}


@pytest.fixture(scope="module")
def string_fitted(tiny_encoder, toy_data):
    X_train, y_train, _, _ = toy_data
    labels = np.array(["negative", "positive"])[y_train]
    return tiny_classifier(tiny_encoder, epochs=2).fit(X_train, labels)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "model"
    copy.deepcopy(fitted).set_params(threshold=0.8).save(folder)
    return folder


def _predict_in_fresh_process(folder, texts, tmp_path):
    data, out = tmp_path / "texts.json", tmp_path / "out.npz"
    data.write_text(json.dumps(texts), encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import json, pickle
        import numpy as np
        import torch
        from skearly import EarlyExitTextClassifier

        torch.set_num_threads({torch.get_num_threads()})  # same float reductions as the parent

        def no_unpickling(*args, **kwargs):
            raise AssertionError("EarlyExitTextClassifier.load unpickled something")

        pickle.load = pickle.loads = pickle.Unpickler = no_unpickling
        clf = EarlyExitTextClassifier.load({str(folder)!r})
        X = json.loads(open({str(data)!r}, encoding="utf-8").read())
        proba = clf.predict_proba(X)
        np.savez({str(out)!r}, proba=proba, layers=clf.exit_layers_, classes=clf.classes_, pred=clf.predict(X))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    return np.load(out, allow_pickle=False)


@pytest.mark.parametrize("labels", ["int", "str"])
def test_round_trip_in_fresh_process_is_bit_identical(labels, fitted, string_fitted, toy_data, tmp_path):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted if labels == "int" else string_fitted).set_params(threshold=0.8)
    expected = clf.predict_proba(X_test)
    layers = clf.exit_layers_
    assert len(np.unique(layers)) > 1, "the test needs rows exiting at different layers"
    folder = clf.save(tmp_path / "model")
    loaded = _predict_in_fresh_process(folder, X_test, tmp_path)
    np.testing.assert_array_equal(loaded["proba"], expected)
    np.testing.assert_array_equal(loaded["layers"], layers)
    assert loaded["classes"].dtype == clf.classes_.dtype
    np.testing.assert_array_equal(loaded["classes"], clf.classes_)
    np.testing.assert_array_equal(loaded["pred"], clf.predict(X_test))


@pytest.mark.parametrize("labels", ["int", "str"])
def test_labels_keep_their_type(labels, fitted, string_fitted, tmp_path):
    clf = fitted if labels == "int" else string_fitted
    loaded = EarlyExitTextClassifier.load(clf.save(tmp_path / "m"))
    assert loaded.classes_.dtype == clf.classes_.dtype
    assert loaded.classes_.dtype.kind == ("i" if labels == "int" else "U")
    prediction = loaded.predict(["great movie"])[0]
    assert type(prediction) is type(clf.predict(["great movie"])[0])


def test_every_fitted_attribute_and_parameter_round_trips(fitted, saved):
    loaded = EarlyExitTextClassifier.load(saved)
    assert loaded.get_params() == copy.deepcopy(fitted).set_params(threshold=0.8).get_params()
    np.testing.assert_array_equal(loaded.temperatures_, fitted.temperatures_)
    assert loaded.temperatures_.dtype == fitted.temperatures_.dtype
    pd.testing.assert_frame_equal(loaded.calibration_report_, fitted.calibration_report_)
    assert loaded.loss_curve_ == fitted.loss_curve_
    assert loaded.fit_time_ == fitted.fit_time_
    assert loaded.head_layers_ == fitted.head_layers_ and isinstance(loaded.head_layers_, tuple)
    assert loaded.n_layers_ == fitted.n_layers_
    for name, value in vars(fitted).items():  # whatever fitted attributes the estimator has (calibration_proba_ ...)
        if not name.endswith("_") or name.startswith("_") or name in ("network_", "tokenizer_", "exit_layers_"):
            continue
        assert_same(getattr(loaded, name), value, name)
    original = fitted.network_.state_dict()
    for key, tensor in loaded.network_.state_dict().items():
        assert torch_equal(tensor, original[key]), key
    assert not loaded.network_.training


def assert_same(again, value, name: str) -> None:
    """``again`` equals ``value`` in type, dtype and shape too (arrays and frames inside dicts included)."""
    if isinstance(value, np.ndarray):
        assert again.dtype == value.dtype and again.shape == value.shape, name
        np.testing.assert_array_equal(again, value)
    elif isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(again, value)
    elif isinstance(value, dict):
        assert type(again) is dict and set(again) == set(value), name
        for key, item in value.items():
            assert_same(again[key], item, f"{name}[{key!r}]")
    else:
        assert again == value and type(again) is type(value), name


def torch_equal(a, b) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool((a.cpu() == b.cpu()).all())


def test_extra_fitted_attributes_round_trip(fitted, tmp_path):
    clf = copy.deepcopy(fitted)
    rng = np.random.default_rng(0)
    extras = {
        "extra_proba_": rng.random((3, 5, 2), dtype=np.float32),
        "extra_ints_": np.arange(6, dtype=np.int16).reshape(2, 3),
        "extra_mask_": np.array([True, False, True]),
        "extra_names_": np.array(["a", "bé", "😀"]),
        "extra_objects_": np.array(["x", 1, None], dtype=object),
        "extra_list_": [1.5, float("nan"), float("inf"), "s", None, (1, 2)],
        "extra_float_": 0.1 + 0.2,
        "extra_scalar_": np.float32(1.25),
        "extra_dict_": {"a": [1, 2], "b": {"c": np.int64(3)}},
    }
    for name, value in extras.items():
        setattr(clf, name, value)
    loaded = EarlyExitTextClassifier.load(clf.save(tmp_path / "m"))
    for name in ("extra_proba_", "extra_ints_", "extra_mask_", "extra_names_", "extra_objects_"):
        value = getattr(loaded, name)
        assert value.dtype == extras[name].dtype and value.shape == extras[name].shape, name
        np.testing.assert_array_equal(value, extras[name])
    assert loaded.extra_list_[0] == 1.5 and np.isnan(loaded.extra_list_[1]) and loaded.extra_list_[2] == np.inf
    assert loaded.extra_list_[3:] == ["s", None, (1, 2)]
    assert loaded.extra_float_ == extras["extra_float_"]
    assert loaded.extra_scalar_ == np.float32(1.25) and loaded.extra_scalar_.dtype == np.float32
    assert loaded.extra_dict_ == {"a": [1, 2], "b": {"c": 3}}


def test_builtin_criterion_object_round_trips(fitted, tmp_path):
    clf = copy.deepcopy(fitted).set_params(exit_criterion=Patience(3))
    loaded = EarlyExitTextClassifier.load(clf.save(tmp_path / "m"))
    assert loaded.exit_criterion == Patience(3)


def test_custom_criterion_is_refused_and_nothing_is_written(fitted, tmp_path):
    class Always(ExitCriterion):
        def decide(self, proba, state, threshold):
            return proba[:, 0] >= 0, state

    clf = copy.deepcopy(fitted).set_params(exit_criterion=Always())
    with pytest.raises(TypeError, match="custom Always.*built-in ExitCriterion classes"):
        clf.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_unsaveable_fitted_attribute_is_refused(fitted, tmp_path):
    clf = copy.deepcopy(fitted)
    clf.weird_ = object()
    with pytest.raises(TypeError, match="weird_ of type object"):
        clf.save(tmp_path / "m")


def test_random_state_object_is_saved_as_none_with_a_warning(fitted, tmp_path):
    clf = copy.deepcopy(fitted).set_params(random_state=np.random.RandomState(0))
    with pytest.warns(UserWarning, match="random_state.*saved as None"):
        folder = clf.save(tmp_path / "m")
    assert EarlyExitTextClassifier.load(folder).random_state is None


def test_unfitted_estimator_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        EarlyExitTextClassifier().save(tmp_path / "m")


def test_no_pickle_is_written(saved):
    files = [p for p in saved.rglob("*") if p.is_file()]
    names = sorted(str(p.relative_to(saved)) for p in files)
    assert {WEIGHTS_FILE, METADATA_FILE, CONFIG_FILE} <= set(names)
    assert any(name.startswith(TOKENIZER_DIR + "/") for name in names)
    for path in files:
        assert path.suffix in {".safetensors", ".json", ".txt", ".model"}, path
        assert path.suffix not in PICKLE_SUFFIXES
        head = path.read_bytes()[:2]
        assert not head.startswith(b"\x80"), f"{path} starts like a pickle stream"
        assert b"cnumpy" not in path.read_bytes() and b"ctorch" not in path.read_bytes()


def test_loaded_model_still_pickles_and_joblib_works(saved, tmp_path):
    import joblib

    loaded = EarlyExitTextClassifier.load(saved)
    joblib.dump(loaded, tmp_path / "m.joblib")
    again = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(again.predict_proba(["good", "bad"]), loaded.predict_proba(["good", "bad"]))


def test_save_overwrites_an_existing_model_folder(fitted, string_fitted, tmp_path):
    folder = tmp_path / "m"
    fitted.save(folder)
    string_fitted.save(folder)
    assert EarlyExitTextClassifier.load(folder).classes_.dtype.kind == "U"


def test_save_to_a_file_is_refused(fitted, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        fitted.save(tmp_path / "file")


# ------------------------------------------------------------------- corrupted folders
@pytest.fixture
def copy_of_saved(saved, tmp_path):
    import shutil

    return shutil.copytree(saved, tmp_path / "copy")


def _load_error(folder) -> str:
    with pytest.raises(ValueError) as info:
        EarlyExitTextClassifier.load(folder)
    return str(info.value)


@pytest.mark.parametrize("how", ["truncate", "garbage", "empty", "delete"])
def test_corrupted_weights_name_the_file(copy_of_saved, how):
    weights = copy_of_saved / WEIGHTS_FILE
    data = weights.read_bytes()
    if how == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        weights.write_bytes(b"\x00\x01not a safetensors file" * 10)
    elif how == "empty":
        weights.write_bytes(b"")
    else:
        weights.unlink()
    assert WEIGHTS_FILE in _load_error(copy_of_saved)


@pytest.mark.parametrize("name", [METADATA_FILE, CONFIG_FILE])
@pytest.mark.parametrize("content", ['{"format": ', "", "[1, 2]", "\udcff"])
def test_bad_json_names_the_file(copy_of_saved, name, content):
    (copy_of_saved / name).write_bytes(content.encode("utf-8", "surrogateescape"))
    assert name in _load_error(copy_of_saved)


def test_missing_metadata_names_the_file(copy_of_saved):
    (copy_of_saved / METADATA_FILE).unlink()
    assert METADATA_FILE in _load_error(copy_of_saved)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 999, 0, "1", None])
def test_wrong_format_version(copy_of_saved, version):
    meta_file = copy_of_saved / METADATA_FILE
    meta = json.loads(meta_file.read_text())
    meta["format_version"] = version
    meta_file.write_text(json.dumps(meta))
    message = _load_error(copy_of_saved)
    assert METADATA_FILE in message and "format version" in message and repr(version) in message
    if isinstance(version, int) and version > FORMAT_VERSION:
        assert "upgrade skearly" in message


def test_incomplete_metadata_names_the_file(copy_of_saved):
    meta_file = copy_of_saved / METADATA_FILE
    meta = json.loads(meta_file.read_text())
    del meta["network"]
    meta_file.write_text(json.dumps(meta))
    assert METADATA_FILE in _load_error(copy_of_saved)


def test_weights_that_do_not_match_the_config(copy_of_saved):
    config_file = copy_of_saved / CONFIG_FILE
    config = json.loads(config_file.read_text())
    config["hidden_size"] = 16
    config_file.write_text(json.dumps(config))
    message = _load_error(copy_of_saved)
    assert WEIGHTS_FILE in message and "does not match" in message


def test_config_without_model_type(copy_of_saved):
    config_file = copy_of_saved / CONFIG_FILE
    config = json.loads(config_file.read_text())
    del config["model_type"]
    config_file.write_text(json.dumps(config))
    assert CONFIG_FILE in _load_error(copy_of_saved)


def test_missing_tokenizer(copy_of_saved):
    import shutil

    shutil.rmtree(copy_of_saved / TOKENIZER_DIR)
    assert TOKENIZER_DIR in _load_error(copy_of_saved)


def test_not_a_folder(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        EarlyExitTextClassifier.load(tmp_path / "nope")


def test_loading_warns_about_unknown_parameters(copy_of_saved):
    meta_file = copy_of_saved / METADATA_FILE
    meta = json.loads(meta_file.read_text())
    meta["params"]["from_the_future"] = 3
    meta_file.write_text(json.dumps(meta))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        EarlyExitTextClassifier.load(copy_of_saved)
    assert any("from_the_future" in str(w.message) for w in caught)


def test_predict_time_parameters_round_trip(fitted, toy_data, tmp_path):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(exit_criterion="entropy", predict_batch_size=7)
    if "target_speedup" in clf.get_params():
        clf.set_params(target_speedup=1.5)
    expected, layers = clf.predict_proba(X_test), clf.exit_layers_
    loaded = EarlyExitTextClassifier.load(clf.save(tmp_path / "m"))
    assert loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X_test), expected)
    np.testing.assert_array_equal(loaded.exit_layers_, layers)


def test_memory_parameter_is_saved_as_a_folder(fitted, tmp_path):
    import joblib

    if "memory" not in fitted.get_params():
        pytest.skip("this estimator has no memory parameter")
    clf = copy.deepcopy(fitted).set_params(memory=joblib.Memory(str(tmp_path / "cache"), verbose=0))
    assert EarlyExitTextClassifier.load(clf.save(tmp_path / "m")).memory == str(tmp_path / "cache")
    clf.set_params(memory=tmp_path / "cache2")
    assert EarlyExitTextClassifier.load(clf.save(tmp_path / "m")).memory == str(tmp_path / "cache2")


def test_engine_strategies_round_trip(fitted, toy_data, tmp_path):
    from skearly import EarlyExitTextClassifier
    from skearly.inference._schedulers import RefillingScheduler

    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(scheduler=RefillingScheduler(), backend="torch", threshold=0.8)
    clf.save(tmp_path / "m")
    loaded = EarlyExitTextClassifier.load(tmp_path / "m")
    assert loaded.scheduler == RefillingScheduler() and loaded.backend == "torch"
    np.testing.assert_array_equal(loaded.predict(X_test), clf.predict(X_test))


def test_calibration_inputs_round_trip_and_refit_the_same_temperatures(fitted, saved):
    loaded = EarlyExitTextClassifier.load(saved)
    assert_same(loaded.calibration_inputs_, fitted.calibration_inputs_, "calibration_inputs_")
    assert loaded.calibration_inputs_["input_ids"].dtype == np.int32
    assert len(loaded.calibration_inputs_["labels"]) == fitted.calibration_report_["n_rows"].iloc[0] > 0
    expected = copy.deepcopy(fitted).calibration_report("int8")
    assert expected["refitted"].all()
    pd.testing.assert_frame_equal(loaded.calibration_report("int8"), expected)


# ------------------------------------------------------------------- fitted-state schema (issue 23)
def _edit_fitted(folder, edit) -> None:
    meta_file = folder / METADATA_FILE
    meta = json.loads(meta_file.read_text())
    edit(meta["fitted"])
    meta_file.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "edit, key, match",
    [
        (lambda f: f.update(classes_=3), "classes_", "should be a 1-D array of the 2 class labels, got int"),
        (lambda f: f.update(head_layers_="1234"), "head_layers_", "should be a tuple of ints"),
        (lambda f: f.pop("temperatures_"), "temperatures_", "is missing"),
        (lambda f: f.pop("input_kind_"), "input_kind_", "is missing"),
        (lambda f: f.update(input_kind_={"__dict__": {"pairs": "no", "columns": None}}), "input_kind_", "should be"),
        (lambda f: f.update(n_layers_=7), "n_layers_", "should be the int 4"),
        (lambda f: f.update(loss_curve_=["low"]), "loss_curve_", "list of numbers"),
        (lambda f: f.update(fit_time_=None), "fit_time_", "number of seconds"),
        (lambda f: f.update(calibration_inputs_=[1]), "calibration_inputs_", "None or a dict"),
    ],
)
def test_load_checks_the_fitted_state_against_the_schema(copy_of_saved, edit, key, match):
    _edit_fitted(copy_of_saved, edit)
    message = _load_error(copy_of_saved)
    assert METADATA_FILE in message and repr(key) in message and match in message


def test_every_fitted_attribute_is_in_the_schema(fitted):
    from skearly import persistence

    saved_names = set(persistence._fitted_attributes(fitted))
    assert saved_names == set(persistence._FITTED_SCHEMA)


def test_unsupported_model_type_is_blamed_on_the_encoder_config(copy_of_saved):
    config_file = copy_of_saved / CONFIG_FILE
    config = json.loads(config_file.read_text())
    config["model_type"] = "gpt2"
    config_file.write_text(json.dumps(config))
    message = _load_error(copy_of_saved)
    assert CONFIG_FILE in message and "model_type='gpt2'" in message and METADATA_FILE not in message


# ------------------------------------------------------------------- atomic save (issue 23)
def test_a_failed_save_leaves_the_previous_model_loadable(fitted, string_fitted, toy_data, tmp_path, monkeypatch):
    folder = fitted.save(tmp_path / "m")
    (folder / "README.txt").write_text("mine", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    clf = copy.deepcopy(string_fitted)

    def killed(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(clf.tokenizer_, "save_pretrained", killed)  # the weights are written, then this fails
    with pytest.raises(OSError, match="simulated"):
        clf.save(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no scratch folder left behind
    loaded = EarlyExitTextClassifier.load(folder)
    np.testing.assert_array_equal(loaded.predict(toy_data[2]), fitted.predict(toy_data[2]))


def test_a_successful_save_replaces_the_model_and_keeps_other_files(fitted, string_fitted, tmp_path):
    folder = fitted.save(tmp_path / "m")
    (folder / "README.txt").write_text("mine", encoding="utf-8")
    string_fitted.save(folder)
    assert (folder / "README.txt").read_text(encoding="utf-8") == "mine"
    assert EarlyExitTextClassifier.load(folder).classes_.dtype.kind == "U"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_half_written_folder_is_refused(saved, tmp_path):
    import shutil

    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(saved / WEIGHTS_FILE, half / WEIGHTS_FILE)  # killed before skearly.json (always written last)
    shutil.copy(saved / CONFIG_FILE, half / CONFIG_FILE)
    message = _load_error(half)
    assert METADATA_FILE in message and "not a complete skearly model folder" in message
