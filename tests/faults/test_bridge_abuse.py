"""The bridge under abuse, served by uvicorn on 127.0.0.1: wrong tokens, huge and
chunked bodies, deep nesting, traversal and alias keys, floods. Every answer is a 4xx
with one clear reason, memory stays bounded and the log does not flood."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest
import uvicorn

from cygno.deployments.event_bridge import MAX_BODY_BYTES, EventPoster
from cygno.deployments.webapp import create_app
from cygno.settings import Settings
from cygno.storage.objectstore import ObjectStore
from tests.deployments.test_event_bridge import notification, record

TOKEN = "canary-bridge-token-5e1f"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def bridge(tmp_path) -> Iterator[str]:
    """The real app under uvicorn; its Prefect API is a closed port (nothing here is
    meant to be accepted, and a dead API must not change any answer below)."""
    store = ObjectStore((tmp_path / "store").as_uri())
    settings = Settings(bridge_token=TOKEN, store_url=store.url, data_dir=tmp_path)
    poster = EventPoster(f"http://127.0.0.1:{_free_port()}/api")
    app = create_app(settings, store=store, poster=poster)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def post(url: str, body, headers=AUTH, **kwargs) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/s3-events", content=content, headers=headers, timeout=30, **kwargs)


def test_missing_or_wrong_tokens_are_refused_without_echoing_them(bridge, caplog):
    body = notification(record("raw/LNGS/run00001.mid.gz"))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        answer = post(bridge, body, headers=headers)
        assert answer.status_code == 401 and "bearer token" in answer.json()["error"]
        assert TOKEN not in answer.text
    assert TOKEN not in caplog.text


def test_a_chunked_400_mb_body_is_cut_off_without_holding_it(bridge):
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        block = b"[" + b" " * (1 << 20)
        for _ in range(400):  # 400 MB if nobody stops it
            sent += len(block)
            yield block

    rss = psutil.Process().memory_info().rss
    try:
        answer = httpx.post(f"{bridge}/s3-events", content=chunks(), headers=AUTH, timeout=30)
        status = answer.status_code
    except httpx.TransportError:
        status = None  # the server closed the connection mid-upload: also a refusal
    grown = (psutil.Process().memory_info().rss - rss) >> 20
    assert status in (413, None)
    assert grown < 64, f"RSS grew by {grown} MiB"
    assert sent < 400 << 20 or status == 413
    over = post(bridge, b" " * (MAX_BODY_BYTES + 1))  # declared honestly: refused up front
    assert over.status_code == 413


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deep_nesting_is_a_400_not_a_500(bridge, depth):
    nested = "[" * depth + "]" * depth
    body = f'{{"Records": [{{"s3": {nested}}}]}}'.encode()
    answer = post(bridge, body)
    assert answer.status_code == 400 and "nested deeper than" in answer.json()["error"]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("raw/../etc/run00001.mid.gz", "'..'"),
        ("raw/LNGS/run000002.mid.gz", "the one accepted spelling is 'run00002'"),
        ("raw/LNGS/run\u0660\u0660\u0660\u0660\u0662.mid.gz", "ASCII digits"),
        ("/etc/passwd", "not a raw run file"),
    ],
)
def test_traversal_and_alias_keys_are_ignored_with_their_reason(bridge, key, reason):
    answer = post(bridge, notification(record(key)))
    assert answer.status_code == 200 and answer.json()["accepted"] == []
    (ignored,) = answer.json()["ignored"]
    assert reason in ignored["reason"]


def test_floods_do_not_flood_the_log(bridge, caplog):
    caplog.set_level(logging.INFO, logger="cygno.bridge")
    many = notification(*[record(f"raw/LNGS/notes{i}.txt") for i in range(2000)])
    answer = post(bridge, many)  # a few MB of records that are all ignored
    assert answer.status_code == 200 and len(answer.json()["ignored"]) == 2000
    with httpx.Client(timeout=30) as client:
        for _ in range(100):  # a bounded flood of malformed bodies
            bad = client.post(f"{bridge}/s3-events", content=b"{not json", headers=AUTH)
            assert bad.status_code == 400
    lines = [r for r in caplog.records if r.name == "cygno.bridge"]
    assert len(lines) <= 22, f"{len(lines)} log lines"  # the throttle's burst, and a summary
