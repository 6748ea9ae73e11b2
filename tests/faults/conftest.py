"""The fault-injection suite: every case breaks one thing on purpose (bytes, services,
processes, the bridge) and asserts that no raw byte is lost, nothing is written twice,
the catalog stays true to the bytes and the failure says one clear thing.

Every test here carries the ``faults`` marker (``pytest -m faults`` runs the suite
alone); the default cases are fast and run with ``make test``, heavier variants carry
``bench`` as well.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.flows.harness import Platform, platform


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def plat(prefect_api: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    with platform(tmp_path / "platform", monkeypatch) as p:
        yield p


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose server accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A port nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
