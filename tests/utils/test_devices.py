import copy

import numpy as np
import pytest
import torch

from skearly import EarlyExitTextClassifier
from skearly._utils.devices import resolve_device


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_bad_device_string():
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu-please")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_says_how_to_fix_it():
    with pytest.raises(ValueError, match=r"set_params\(device='cpu'\).*load\(path, device='cpu'\)"):
        resolve_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_gpu_model_loads_and_predicts_on_the_cpu(fitted, toy_data, tmp_path):
    _, _, X_test, _ = toy_data
    gpu_model = copy.deepcopy(fitted).set_params(device="cuda")  # as if fitted on a GPU machine
    gpu_model.save(tmp_path / "m")
    with pytest.raises(ValueError, match="CUDA is not available"):
        EarlyExitTextClassifier.load(tmp_path / "m").predict(X_test)
    loaded = EarlyExitTextClassifier.load(tmp_path / "m", device="cpu")
    assert loaded.device == "cpu"
    np.testing.assert_array_equal(loaded.predict(X_test), fitted.predict(X_test))
    with pytest.raises(ValueError, match="CUDA is not available"):
        EarlyExitTextClassifier.load(tmp_path / "m", device="cuda")


def test_training_precision(monkeypatch):
    from skearly._utils import devices

    cpu = torch.device("cpu")
    assert devices.training_precision(cpu, False) == "float32"
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert devices.training_precision(cpu, True) == "bfloat16"
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    assert devices.training_precision(cpu, True) == "float32"


def test_training_autocast_computes_in_the_precision():
    from skearly._utils.devices import training_autocast

    cpu = torch.device("cpu")
    a = torch.ones(4, 4)
    with training_autocast(cpu, "bfloat16"):
        assert (a @ a).dtype == torch.bfloat16
    with training_autocast(cpu, "float32"):
        assert (a @ a).dtype == torch.float32
