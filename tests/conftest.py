"""Shared fixtures: a tiny random encoder and a small learnable text task (fast, offline).

The whole test session is offline: ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``
are set before transformers is imported (subprocesses inherit them), and
internet sockets are blocked (see :func:`pytest_configure`).
"""

from __future__ import annotations

import ipaddress
import os
import socket

# before anything imports huggingface_hub / transformers: they read these at import time
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from skearly import EarlyExitTextClassifier  # noqa: E402
from skearly.encoders import make_tiny_encoder  # noqa: E402

NETWORK_BLOCKED = "network access blocked in tests"
_LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}


def _is_local(host) -> bool:
    """Loopback hosts (127.0.0.0/8, ::1, localhost): allowed, e.g. for a dask LocalCluster."""
    if host in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkBlockedError(ConnectionError):
    """Raised by any attempt to open an internet connection during the tests."""


def _guard_connect(original):
    def connect(self, address, *args, **kwargs):
        if getattr(socket, "AF_UNIX", None) is not None and self.family == socket.AF_UNIX:
            return original(self, address, *args, **kwargs)
        if isinstance(address, tuple) and address and _is_local(address[0]):  # loopback: dask LocalCluster
            return original(self, address, *args, **kwargs)
        raise NetworkBlockedError(f"{NETWORK_BLOCKED}: connect to {address!r}")

    return connect


def _guard_create_connection(original):
    def create_connection(address, *args, **kwargs):
        if _is_local(address[0]):
            return original(address, *args, **kwargs)
        raise NetworkBlockedError(f"{NETWORK_BLOCKED}: create_connection to {address!r}")

    return create_connection


def _guard_getaddrinfo(original):
    def getaddrinfo(host, *args, **kwargs):
        if _is_local(host):
            return original(host, *args, **kwargs)
        raise NetworkBlockedError(f"{NETWORK_BLOCKED}: name lookup of {host!r}")

    return getaddrinfo


_network_patch = pytest.MonkeyPatch()


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        default=False,
        help="run the hypothesis fuzz tests with 10,000+ generated inputs in total (default: about 2,000)",
    )


def pytest_configure(config):
    """Block internet sockets for the whole session, collection included (AF_UNIX and loopback still work).

    Under pytest-xdist (``make test-fast`` runs ``-n 2``) each worker computes with one torch
    thread, so that the workers share the cores instead of oversubscribing them.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
    _network_patch.setattr(socket.socket, "connect", _guard_connect(socket.socket.connect))
    _network_patch.setattr(socket.socket, "connect_ex", _guard_connect(socket.socket.connect_ex))
    _network_patch.setattr(socket, "create_connection", _guard_create_connection(socket.create_connection))
    _network_patch.setattr(socket, "getaddrinfo", _guard_getaddrinfo(socket.getaddrinfo))


def pytest_unconfigure(config):
    _network_patch.undo()


@pytest.fixture(scope="session")
def fuzz_scale(request) -> int:
    """Multiplier of the fuzz tests' example counts: 5 with ``--fuzz-long``, else 1."""
    return 5 if request.config.getoption("--fuzz-long") else 1


POSITIVE = ["great", "good", "love", "excellent", "happy", "wonderful", "best", "nice"]
NEGATIVE = ["bad", "awful", "hate", "terrible", "sad", "worst", "poor", "ugly"]
FILLER = ["the", "movie", "was", "really", "a", "plot", "this", "and", "film", "actor", "quite", "so"]


def make_texts(n: int, seed: int = 0, n_classes: int = 2) -> tuple[list[str], np.ndarray]:
    """Short texts whose label is given by which word list they draw from (third class: fillers only)."""
    rng = np.random.RandomState(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % n_classes
        words = list(rng.choice(FILLER, size=rng.randint(2, 9)))
        if label < 2:
            vocab = POSITIVE if label == 1 else NEGATIVE
            for _ in range(rng.randint(1, 3)):
                words.insert(rng.randint(len(words) + 1), rng.choice(vocab))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.asarray(labels)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    return str(make_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder")))


def tiny_classifier(encoder: str, **params) -> EarlyExitTextClassifier:
    """Settings under which the tiny encoder learns the toy task in about a second."""
    defaults = dict(epochs=4, learning_rate=3e-3, batch_size=16, calibration_size=0.2, random_state=0)
    defaults.update(params)
    return EarlyExitTextClassifier(encoder, **defaults)


@pytest.fixture(scope="session")
def toy_data():
    X_train, y_train = make_texts(240, seed=0)
    X_test, y_test = make_texts(120, seed=1)
    return X_train, y_train, X_test, y_test


@pytest.fixture(scope="session")
def fitted(tiny_encoder, toy_data) -> EarlyExitTextClassifier:
    X_train, y_train, _, _ = toy_data
    return tiny_classifier(tiny_encoder).fit(X_train, y_train)
