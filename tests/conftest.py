"""Session fixtures shared by the whole suite: real services on 127.0.0.1.

- ``s3_server``: moto's standalone S3 server in a thread, reached through s3fs.
- ``db_url``: parametrised over SQLite (always), MariaDB and PostgreSQL (when
  ``CYGNO_TEST_MARIADB_URL`` / ``CYGNO_TEST_POSTGRES_URL`` are set, as CI does); each
  test gets a freshly created, uniquely named database that is dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    key: str = "testing"
    secret: str = "testing"

    def storage_options(self) -> dict:
        return {"endpoint_url": self.endpoint_url, "key": self.key, "secret": self.secret}

    def new_bucket(self) -> str:
        """Create a bucket with a unique name, so tests never see each other's objects."""
        import boto3

        name = f"test-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()


def _server_url(backend: str) -> str | None:
    return os.environ.get(f"CYGNO_TEST_{backend.upper()}_URL")


@pytest.fixture(params=["sqlite", "mariadb", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A URL to an empty database of each backend, dropped after the test."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@contextlib.contextmanager
def fresh_database(backend: str, tmp_path) -> Iterator[str]:
    """A new, uniquely named empty database of `backend` (sqlite, mariadb, postgres),
    dropped on exit; skips the test when the server's URL is not set."""
    name = f"cygno_test_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / (name + '.db')}"
        return
    base = _server_url(backend)
    if not base:
        pytest.skip(f"CYGNO_TEST_{backend.upper()}_URL is not set; CI sets it")
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        sa.engine.create_engine(url).dispose()
        with admin.connect() as conn:
            if backend == "postgres":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture
def store(tmp_path, monkeypatch):
    """The object store the settings name (tasks build theirs from the settings, as on a
    worker): a fresh ``file://`` root with a SQLite catalog beside it. Test modules with a
    store of their own define their own ``store``."""
    from cygno.settings import get_settings
    from cygno.tasks import resources

    monkeypatch.setenv("CYGNO_STORE_URL", (tmp_path / "store").as_uri())
    monkeypatch.setenv("CYGNO_CATALOG_URL", f"sqlite:///{tmp_path / 'catalog.db'}")
    get_settings.cache_clear()
    yield resources.store()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ONE ephemeral Prefect server for the session (~10 s to start); its API URL."""
    from tests.flows.harness import prefect_server

    with prefect_server(tmp_path_factory.mktemp("prefect-home")) as api_url:
        yield api_url
