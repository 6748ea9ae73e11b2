"""Databases and S3 that are down or hang (a real TCP listener on 127.0.0.1 that accepts
and never answers): every call fails within its timeouts, names the endpoint, never a
secret, and nothing is recorded as if the data were missing."""

from __future__ import annotations

import time

import pytest

from cygno.settings import get_settings
from cygno.storage.catalog.sql import DatabaseUnavailable
from cygno.storage.objectstore import ObjectStore
from cygno.tasks.bookkeeping import abandoned

CANARY = "canary-Pa55w0rd-7f3e"


DATABASES = {
    "mariadb": "mysql+pymysql://cygno:{secret}@127.0.0.1:{port}/cygno?connect_timeout=2&read_timeout=2",
    "postgres": "postgresql+psycopg://cygno:{secret}@127.0.0.1:{port}/cygno?connect_timeout=2",
}


@pytest.mark.parametrize("backend", list(DATABASES))
@pytest.mark.parametrize("fault", ["hangs", "down"])
def test_a_catalog_that_hangs_or_is_down_fails_the_first_step_naming_it(
    backend, fault, silent_port, closed_port, tmp_path, monkeypatch
):
    port = silent_port if fault == "hangs" else closed_port
    url = DATABASES[backend].format(secret=CANARY, port=port)
    monkeypatch.setenv("CYGNO_CATALOG_URL", url)
    monkeypatch.setenv("CYGNO_STORE_URL", (tmp_path / "store").as_uri())
    get_settings.cache_clear()
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            abandoned.fn("raw/LNGS/run00001.mid.gz")  # process-run's first step
    finally:
        get_settings.cache_clear()
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "did not answer" in message
    assert CANARY not in message and CANARY not in repr(caught.value)


@pytest.mark.parametrize("fault", ["hangs", "down"])
def test_an_s3_store_that_hangs_or_is_down_raises_naming_the_endpoint(
    fault, silent_port, closed_port
):
    port = silent_port if fault == "hangs" else closed_port
    store = ObjectStore(
        f"s3://outage-{fault}",
        {
            "endpoint_url": f"http://127.0.0.1:{port}",
            "key": "AKIACANARY",
            "secret": CANARY,
            "config_kwargs": {"connect_timeout": 1, "read_timeout": 1},
        },
    )
    for call in (store.exists, store.get_bytes)[: 1 if fault == "hangs" else 2]:
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            call("raw/LNGS/run00001.mid.gz")
        assert time.monotonic() - started < 40
        assert not isinstance(caught.value, FileNotFoundError)  # an outage is no "missing"
        assert f"127.0.0.1:{port}" in str(caught.value)
        assert CANARY not in str(caught.value) and CANARY not in repr(store)
