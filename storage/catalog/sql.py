"""Portable SQL pieces shared by the catalog and the DAQ logbook: engines and column types.

The same schema has to behave identically on SQLite, MariaDB and PostgreSQL:

- :class:`UTCDateTime` stores naive UTC with microseconds everywhere (MariaDB's plain
  ``DATETIME`` would round to whole seconds, which makes "unchanged" rows look changed)
  and always hands back timezone-aware UTC datetimes.
- :func:`KeyString` is a ``VARCHAR`` with a binary collation on MariaDB/MySQL, whose
  default collation is case-insensitive: ``raw/LNGS/x`` and ``raw/lngs/x`` are different
  objects and must not collide on a unique index. Lengths stay ≤ 512 characters so that
  utf8mb4 indexes fit InnoDB's 3072-byte key limit.
- :func:`engine_for` makes one engine per URL and process; SQLite gets WAL, a busy
  timeout and ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing with
  "database is locked" when a read transaction tries to upgrade to a write.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.pool import StaticPool

UTC = dt.UTC


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """Naive UTC with microseconds in the database, aware UTC in Python."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite without type detection
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


def KeyString(length: int) -> sa.types.TypeEngine:
    """A VARCHAR that compares byte-wise on every backend (see module docstring)."""
    if length > 512:
        raise ValueError("indexed strings must stay ≤ 512 characters for MariaDB")
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays, datetimes and paths, as JSON understands them."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, sort_keys=True)


def json_normalise(value: Any) -> Any:
    """What a JSON column gives back after a round trip (so comparisons are exact)."""
    return json.loads(json_dumps(value))


_ENGINES: dict[str, sa.Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:")
    if in_memory:
        engine = sa.create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            json_serializer=json_dumps,
        )
    else:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 60, "check_same_thread": False},
            json_serializer=json_dumps,
        )

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        # writers take the write lock up front; readers (WAL) never block anyone
        readonly = connection.get_execution_options().get("cygno_readonly")
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


#: Seconds to establish a connection, and to wait for the answer to one statement: a
#: database that accepts and never answers fails the caller instead of hanging it
#: (a URL query such as ``?connect_timeout=3`` overrides them).
CONNECT_TIMEOUT = 10
STATEMENT_TIMEOUT = 120


class DatabaseUnavailable(ConnectionError):
    """The database did not answer (refused, timed out, dropped); names the endpoint,
    never the credentials."""


def endpoint_of(url: sa.URL) -> str:
    """``backend://host:port/database`` without user or password, for messages."""
    where = f"{url.host or 'localhost'}:{url.port}" if url.port else (url.host or "localhost")
    return f"{url.get_backend_name()}://{where}/{url.database or ''}"


def _timeouts(url: sa.URL) -> dict[str, Any]:
    """Connect and statement timeouts in each driver's own terms, unless the URL sets them."""
    given = set(url.query)
    backend = url.get_backend_name()
    if backend in ("mysql", "mariadb"):
        wanted = {
            "connect_timeout": CONNECT_TIMEOUT,
            "read_timeout": STATEMENT_TIMEOUT,
            "write_timeout": STATEMENT_TIMEOUT,
        }
    elif backend == "postgresql":
        wanted = {
            "connect_timeout": CONNECT_TIMEOUT,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT * 1000}",
            "keepalives_idle": 30,
        }
    else:
        wanted = {}
    return {name: value for name, value in wanted.items() if name not in given}


def _name_the_endpoint(engine: sa.Engine, url: sa.URL) -> None:
    """Connection failures say which database did not answer (no secrets)."""

    @sa.event.listens_for(engine, "handle_error")
    def _handle(context) -> None:
        if context.is_pre_ping:
            return  # a stale pooled connection: SQLAlchemy reconnects by itself
        if context.is_disconnect or context.connection is None:
            connect = url.query.get("connect_timeout", CONNECT_TIMEOUT)
            raise DatabaseUnavailable(
                f"database {endpoint_of(url)} did not answer (connect timeout {connect} s): "
                f"{context.original_exception}"
            ) from context.original_exception


def engine_for(url: str) -> sa.Engine:
    """One pooled engine per database URL and process, with timeouts on every call."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            parsed = sa.make_url(url)
            if parsed.get_backend_name() == "sqlite":
                engine = _sqlite_engine(parsed)
            else:
                engine = sa.create_engine(
                    parsed,
                    pool_pre_ping=True,
                    pool_recycle=3600,
                    pool_timeout=CONNECT_TIMEOUT * 3,
                    json_serializer=json_dumps,
                    connect_args=_timeouts(parsed),
                )
            _name_the_endpoint(engine, parsed)
            _ENGINES[url] = engine
        return engine


def _after_fork_in_child() -> None:
    """A forked child must not reuse the parent's sockets: give it fresh pools."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def dispose_engine(url: str) -> None:
    """Close the pooled connections of ``url`` (before its database is dropped)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()
