"""The test session is offline: hub variables set, internet sockets blocked, uncached hub names fail fast."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from skearly import EarlyExitTextClassifier

BLOCKED = "network access blocked in tests"


def test_hub_offline_variables_are_set_before_transformers_is_imported():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE  # read at import time: proves the variable came first


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_socket_connect_is_blocked(family):
    address = ("93.184.215.14", 80) if family == socket.AF_INET else ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 80)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        with pytest.raises(OSError, match=BLOCKED):
            sock.connect(address)
        with pytest.raises(OSError, match=BLOCKED):
            sock.connect_ex(address)


def test_create_connection_and_name_lookup_are_blocked():
    with pytest.raises(OSError, match=BLOCKED):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    with pytest.raises(OSError, match=BLOCKED):
        socket.getaddrinfo("huggingface.co", 443)


def test_http_request_is_blocked():
    with pytest.raises(urllib.error.URLError, match=BLOCKED):
        urllib.request.urlopen("https://huggingface.co/api/models", timeout=2)


def test_unix_sockets_still_work(tmp_path):
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ping")
        assert right.recv(4) == b"ping"
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen(1)
        client.connect(path)
        connection, _ = server.accept()
        with connection:
            client.sendall(b"pong")
            assert connection.recv(4) == b"pong"


def test_subprocesses_inherit_the_offline_variables():
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ['HF_HUB_OFFLINE'], os.environ['TRANSFORMERS_OFFLINE'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ["1", "1"]


def test_uncached_hub_name_fails_fast_with_a_clear_error():
    start = time.perf_counter()
    with pytest.raises(ValueError, match="not found locally.*never downloads"):
        EarlyExitTextClassifier("skearly-tests/certainly-not-cached-model").fit(["a", "b"], [0, 1])
    assert time.perf_counter() - start < 30


def test_loopback_tcp_still_works():
    """Local services (a dask LocalCluster's scheduler) stay reachable: loopback is not the network."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            connection, _ = server.accept()
            with connection:
                client.sendall(b"hi")
                assert connection.recv(2) == b"hi"
