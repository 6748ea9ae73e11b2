"""Catalog backup and restore: a consistent, compressed, portable dump in the object store.

A dump is a directory ``<prefix>/<UTC stamp>/`` holding one gzip JSON-lines file per table
(every table of the catalog's SQLAlchemy metadata, the mirrored DAQ logbook included, in
primary-key order) and, written last, ``manifest.json``: the format, the Alembic revision
of the schema, the source backend and per table its columns with their portable kind, row
count, and the adler32 and size of its part. A dump without a manifest is incomplete.

- **Consistent**: every table is read in one read-only transaction (a snapshot: WAL on
  SQLite, REPEATABLE READ on MariaDB/InnoDB and PostgreSQL).
- **Portable**: values are JSON (datetimes as ISO-8601 UTC, bytes base64), so a dump of
  SQLite restores into MariaDB or PostgreSQL and back.
- **Restore** rebuilds an *empty* database only: schema at the dump's revision (Alembic),
  every part checked against its adler32 and row count, all rows inserted in one
  transaction (foreign keys in dependency order), PostgreSQL sequences moved past the
  restored ids, then the schema upgraded to this code's head.
- **Retention**: keep the newest dump of each of the last ``keep_daily`` days and of each
  of the last ``keep_weekly`` ISO weeks (the newest dump always); delete the rest, and
  incomplete dumps older than the newest complete one.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cygno.storage.catalog.models import Base
from cygno.storage.catalog.sql import UTC, as_utc, engine_for, json_dumps
from cygno.storage.checksum import Adler32
from cygno.storage.objectstore import ObjectStore

FORMAT = "cygno.catalog-dump/1"
PREFIX = "backups/catalog"
MANIFEST = "manifest.json"
STAMP = "%Y%m%dT%H%M%SZ"
BATCH = 1000


class RestoreError(RuntimeError):
    """A restore that must not proceed: target not empty, dump damaged or unknown."""


@dataclass(frozen=True)
class DumpInfo:
    """A complete dump in the store."""

    key: str  # the dump directory's key (no trailing slash)
    created_at: dt.datetime
    revision: str | None
    rows: dict[str, int]


def column_kind(column: sa.Column) -> str:
    """The portable kind a column's values are dumped as."""
    t = column.type
    if isinstance(t, sa.JSON):
        return "json"
    if isinstance(t, sa.types.TypeDecorator):
        t = t.impl_instance
    for cls, kind in (
        (sa.DateTime, "datetime"),
        (sa.Date, "date"),
        (sa.Boolean, "bool"),
        (sa.Integer, "int"),
        (sa.Float, "float"),
        (sa.Numeric, "float"),
        (sa.LargeBinary, "bytes"),
        (sa.String, "str"),
    ):
        if isinstance(t, cls):
            return kind
    raise TypeError(f"column {column} has a type the dump cannot carry: {column.type!r}")


def _encode(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return as_utc(value).isoformat()
    if kind == "date":
        return value.isoformat()
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind == "bool":
        return bool(value)
    return value


def _decode(kind: str, value: Any, json_native: bool) -> Any:
    """A dumped value as the (reflected) target column accepts it."""
    if value is None:
        return None
    if kind == "datetime":
        return as_utc(dt.datetime.fromisoformat(value)).replace(tzinfo=None)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "json" and not json_native:
        return json_dumps(value)
    return value


def _safe_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def _revision(connection: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _snapshot(engine: sa.Engine) -> sa.Connection:
    """A connection whose one transaction sees a consistent snapshot of every table."""
    if engine.dialect.name == "sqlite":
        return engine.connect().execution_options(cygno_readonly=True)
    return engine.connect().execution_options(isolation_level="REPEATABLE READ")


def _rows(connection: sa.Connection, table: sa.Table) -> Iterator[sa.Row]:
    order = list(table.primary_key.columns) or list(table.columns)
    result = connection.execution_options(yield_per=BATCH).execute(
        sa.select(table).order_by(*order)
    )
    yield from result


def dump_catalog(
    url: str, store: ObjectStore, prefix: str = PREFIX, now: dt.datetime | None = None
) -> DumpInfo:
    """Dump every catalog table at ``url`` into ``<prefix>/<stamp>/``; returns the dump."""
    from cygno.storage.catalog.repository import Catalog

    created = as_utc(now) if now is not None else dt.datetime.now(UTC)
    key = f"{prefix.rstrip('/')}/{created.strftime(STAMP)}"
    engine = engine_for(url)
    tables: dict[str, Any] = {}
    with _snapshot(engine) as connection, connection.begin():
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        revision = _revision(connection)
        head = Catalog.head_revision()
        if revision != head:
            raise RuntimeError(
                f"catalog {_safe_url(url)} is at schema revision {revision}, this code's is "
                f"{head}: upgrade it (open it with Catalog) before dumping"
            )
        for table in Base.metadata.sorted_tables:
            kinds = {c.name: column_kind(c) for c in table.columns}
            part = f"{key}/{table.name}.jsonl.gz"
            count = 0
            with store.publish(part) as out:
                with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
                    text = io.TextIOWrapper(gz, encoding="utf-8", newline="\n")
                    for row in _rows(connection, table):
                        values = {n: _encode(k, row._mapping[n]) for n, k in kinds.items()}
                        text.write(json_dumps(values) + "\n")
                        count += 1
                    text.flush()
                    text.detach()
                checksum, size = out.adler32, out.tell()
            tables[table.name] = {
                "part": f"{table.name}.jsonl.gz",
                "columns": kinds,
                "rows": count,
                "adler32": checksum,
                "size": size,
            }
    manifest = {
        "format": FORMAT,
        "created_at": created.isoformat(),
        "revision": revision,
        "source_backend": engine.dialect.name,
        "tables": tables,
    }
    store.put_bytes(f"{key}/{MANIFEST}", json.dumps(manifest, indent=1, sort_keys=True).encode())
    return DumpInfo(key, created, revision, {n: t["rows"] for n, t in tables.items()})


def read_manifest(store: ObjectStore, key: str) -> dict[str, Any]:
    try:
        manifest = json.loads(store.get_bytes(f"{key}/{MANIFEST}"))
    except FileNotFoundError as error:
        raise RestoreError(f"{store.uri(key)}: no {MANIFEST}, not a complete dump") from error
    if manifest.get("format") != FORMAT:
        raise RestoreError(f"{store.uri(key)}: format {manifest.get('format')!r}, not {FORMAT}")
    return manifest


def list_dumps(store: ObjectStore, prefix: str = PREFIX) -> list[DumpInfo]:
    """Complete dumps under ``prefix``, oldest first."""
    found = []
    for key in store.list(prefix.rstrip("/") + "/"):
        if key.endswith(f"/{MANIFEST}"):
            dump = key[: -len(MANIFEST) - 1]
            m = read_manifest(store, dump)
            rows = {n: t["rows"] for n, t in m["tables"].items()}
            created = dt.datetime.fromisoformat(m["created_at"])
            found.append(DumpInfo(dump, created, m["revision"], rows))
    return sorted(found, key=lambda d: d.created_at)


def _part_rows(store: ObjectStore, key: str, name: str, spec: dict) -> list[dict[str, Any]]:
    data = store.get_bytes(f"{key}/{spec['part']}")
    adler = Adler32()
    adler.update(data)
    if adler.hexdigest() != spec["adler32"] or len(data) != spec["size"]:
        raise RestoreError(
            f"{store.uri(key)}/{spec['part']}: adler32 {adler.hexdigest()} / {len(data)} bytes, "
            f"manifest says {spec['adler32']} / {spec['size']}: damaged dump, nothing restored"
        )
    rows = [json.loads(line) for line in gzip.decompress(data).splitlines() if line]
    if len(rows) != spec["rows"]:
        raise RestoreError(
            f"{store.uri(key)}/{spec['part']}: {len(rows)} rows, manifest says {spec['rows']}"
        )
    return rows


def _check_empty(engine: sa.Engine, url: str) -> None:
    names = set(sa.inspect(engine).get_table_names())
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name in names:
                n = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                if n:
                    raise RestoreError(
                        f"{_safe_url(url)} is not empty: table {table.name} holds {n} rows. "
                        "Restore rebuilds an empty database only: create a new one (or drop "
                        "this one) and restore into it."
                    )


def _reset_sequences(connection: sa.Connection, tables: Iterable[sa.Table]) -> None:
    """PostgreSQL: serial sequences past the restored ids (other backends follow by
    themselves)."""
    for table in tables:
        for column in table.primary_key.columns:
            if isinstance(column.type, sa.Integer) and column.autoincrement is not False:
                connection.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence(:t, :c), "
                        f'COALESCE(MAX("{column.name}"), 1), MAX("{column.name}") IS NOT NULL) '
                        f'FROM "{table.name}"'
                    ),
                    {"t": table.name, "c": column.name},
                )


def restore_catalog(store: ObjectStore, key: str, url: str) -> dict[str, int]:
    """Rebuild the empty database at ``url`` from the dump at ``key``; rows per table."""
    from cygno.storage.catalog.repository import Catalog

    manifest = read_manifest(store, key)
    engine = engine_for(url)
    _check_empty(engine, url)
    catalog = Catalog(url, upgrade=False)
    current = catalog.revision()
    wanted = manifest["revision"]
    if current not in (None, wanted):
        raise RestoreError(
            f"{_safe_url(url)} has schema revision {current}, the dump {wanted}: restore into "
            "a database without tables"
        )
    if current is None and wanted is not None:
        catalog.upgrade(wanted)
    restored: dict[str, int] = {}
    with engine.begin() as connection:
        meta = sa.MetaData()
        meta.reflect(connection, only=list(manifest["tables"]))
        for name in (t.name for t in Base.metadata.sorted_tables):
            spec = manifest["tables"].get(name)
            if spec is None:
                continue
            table = meta.tables[name]
            kinds = spec["columns"]
            native = {c.name: isinstance(c.type, sa.JSON) for c in table.columns}
            missing = set(kinds) - set(native)
            if missing:
                raise RestoreError(f"{name}: columns {sorted(missing)} not in the schema")
            rows = [
                {c: _decode(kinds[c], v, native[c]) for c, v in row.items()}
                for row in _part_rows(store, key, name, spec)
            ]
            for start in range(0, len(rows), BATCH):
                connection.execute(table.insert(), rows[start : start + BATCH])
            restored[name] = len(rows)
        if engine.dialect.name == "postgresql":
            _reset_sequences(connection, meta.tables.values())
    catalog.upgrade("head")
    return restored


def expired_dumps(
    stamps: Iterable[dt.datetime], keep_daily: int, keep_weekly: int
) -> list[dt.datetime]:
    """The dump times retention deletes: all but the newest of each of the last
    ``keep_daily`` days and ``keep_weekly`` ISO weeks (and the newest overall)."""
    ordered = sorted(set(stamps), reverse=True)
    keep: set[dt.datetime] = set(ordered[:1])
    days: set[dt.date] = set()
    weeks: set[tuple[int, int]] = set()
    for stamp in ordered:
        day, week = stamp.date(), stamp.isocalendar()[:2]
        if day not in days and len(days) < keep_daily:
            days.add(day)
            keep.add(stamp)
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.add(week)
            keep.add(stamp)
    return [s for s in ordered if s not in keep]


def apply_retention(
    store: ObjectStore, keep_daily: int, keep_weekly: int, prefix: str = PREFIX
) -> list[str]:
    """Delete expired dumps (and stale incomplete ones); returns the deleted dump keys."""
    if keep_daily < 1 and keep_weekly < 1:
        raise ValueError("retention must keep at least one daily or weekly dump")
    root = prefix.rstrip("/") + "/"
    by_dump: dict[str, list[str]] = {}
    for k in store.list(root):
        by_dump.setdefault(root + k[len(root) :].split("/", 1)[0], []).append(k)
    complete = {d.key: d.created_at for d in list_dumps(store, prefix)}
    expired = set(expired_dumps(complete.values(), keep_daily, keep_weekly))
    newest = max(complete.values(), default=None)
    doomed = []
    for dump, keys in sorted(by_dump.items()):
        if dump in complete:
            gone = complete[dump] in expired
        else:  # a backup that never finished: stale once a newer one completed
            try:
                started = dt.datetime.strptime(dump.rsplit("/", 1)[1], STAMP)
            except ValueError:
                continue  # not ours
            gone = newest is not None and started.replace(tzinfo=UTC) < newest
        if gone:
            manifest = f"{dump}/{MANIFEST}"
            for k in sorted(keys, key=lambda k: k != manifest):  # manifest first
                store.delete(k)
            doomed.append(dump)
    return doomed
