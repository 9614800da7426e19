"""joblib round-trip, checked in a fresh Python process."""

import copy
import io
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch


def test_joblib_round_trip_in_fresh_process(fitted, toy_data, tmp_path):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(threshold=0.8)
    expected = clf.predict_proba(X_test)
    layers = clf.exit_layers_
    model, data, out = tmp_path / "m.joblib", tmp_path / "x.joblib", tmp_path / "out.npz"
    joblib.dump(clf, model)
    joblib.dump(X_test, data)
    script = textwrap.dedent(
        f"""
        import joblib, numpy as np, torch
        torch.set_num_threads({torch.get_num_threads()})  # same float reductions as the parent
        clf = joblib.load({str(model)!r})
        proba = clf.predict_proba(joblib.load({str(data)!r}))
        np.savez({str(out)!r}, proba=proba, layers=clf.exit_layers_)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    loaded = np.load(out)
    np.testing.assert_array_equal(loaded["proba"], expected)
    np.testing.assert_array_equal(loaded["layers"], layers)


def test_pickling_leaves_the_estimator_intact(fitted):
    clf = copy.deepcopy(fitted)
    pickle.dumps(clf)
    assert hasattr(clf, "network_")


def test_state_holds_cpu_tensors_only(fitted):
    state = copy.deepcopy(fitted).__getstate__()
    assert "network_" not in state
    tensors = state["_network_snapshot"]["state_dict"].values()
    assert all(t.device.type == "cpu" for t in tensors)


def test_unknown_format_version_is_refused(fitted):
    state = copy.deepcopy(fitted).__getstate__()
    state["_network_snapshot"]["version"] = 999
    clf = type(fitted).__new__(type(fitted))
    with pytest.raises(ValueError, match="format version 999"):
        clf.__setstate__(state)


def _joblib_round_trip(clf):
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


@pytest.mark.parametrize("round_trip", [lambda clf: pickle.loads(pickle.dumps(clf)), _joblib_round_trip])
def test_pickle_and_joblib_keep_the_calibration_inputs(fitted, round_trip):
    clf = copy.deepcopy(fitted)
    again = round_trip(clf)
    assert set(again.calibration_inputs_) == set(clf.calibration_inputs_)
    for key, value in clf.calibration_inputs_.items():
        if isinstance(value, np.ndarray):
            assert again.calibration_inputs_[key].dtype == value.dtype, key
            np.testing.assert_array_equal(again.calibration_inputs_[key], value)
        else:
            assert again.calibration_inputs_[key] == value, key
    np.testing.assert_array_equal(
        again.calibration_report("int8")["temperature"], clf.calibration_report("int8")["temperature"]
    )
