import pytest
from transformers import AutoModel

from skearly.encoders import DEFAULT_ENCODER, default_encoder_path, make_tiny_encoder, resolve_encoder


def test_default_encoder_is_packaged_offline():
    path = default_encoder_path()
    assert (path / "model.safetensors").is_file()
    assert resolve_encoder(None) == str(path) == resolve_encoder(DEFAULT_ENCODER)


def test_resolve_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        resolve_encoder(tmp_path / "missing")
    with pytest.raises(ValueError, match="does not exist"):
        resolve_encoder("./missing-model")
    with pytest.raises(TypeError):
        resolve_encoder(3)
    assert resolve_encoder("org/name") == "org/name"  # a hub name: loaded from the local cache only


def test_tiny_encoder(tmp_path):
    path = make_tiny_encoder(tmp_path, n_layers=2, hidden_size=16, n_heads=2)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 16
