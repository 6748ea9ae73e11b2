"""The platform's small HTTP app: the event bridge plus read-only quality plots.

Routes:

- ``POST /s3-events``   S3 bucket notifications → ``cygno.raw.arrived`` (event_bridge).
- ``GET /files/<key>``  streams an object under ``quality/`` from the store, so Prefect
  artifacts can link to ``{public_url}/files/quality/…``: links that never expire,
  unlike presigned URLs. Keys are validated; nothing outside ``quality/`` is served.
  A quality plot not drawn yet (the quality task leaves them to be drawn when first
  shown) is drawn from the JSON beside it and kept in the store
  (``cygno.reco.quality.plot_on_request``).
- ``GET /trends``       HTML page of the trend plots and per-run numbers that
  ``cygno.reco.quality.write_trends`` keeps under ``quality/trends/<version>/<tag>/``
  (``?version=…&tag=…`` narrow it down).
- ``GET /healthz``      liveness plus the event queue's state.
"""

from __future__ import annotations

import html
import json
import logging
import mimetypes
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cygno.deployments.event_bridge import EventBridge, EventPoster
from cygno.reco.quality import plot_on_request, trend_table_html
from cygno.resources import store_for
from cygno.settings import Settings, get_settings
from cygno.storage.keys import QUALITY_PREFIX, validate_key
from cygno.storage.objectstore import ObjectStore

log = logging.getLogger("cygno.bridge")

CHUNK = 256 * 1024
TRENDS_PREFIX = f"{QUALITY_PREFIX}trends/"
#: Types served as themselves; anything else is a download (no HTML from the store).
MEDIA_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".root": "application/octet-stream",
}
FILE_HEADERS = {
    "Cache-Control": "public, max-age=60",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


def media_type(key: str) -> str:
    name = key.rsplit("/", 1)[-1].lower()
    for suffix, kind in MEDIA_TYPES.items():
        if name.endswith(suffix):
            return kind
    guessed, _ = mimetypes.guess_type(name)
    return guessed if guessed and guessed.startswith("image/") else "application/octet-stream"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _stream(store: ObjectStore, key: str) -> Iterator[bytes]:
    with store.open(key, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _drawer(store: ObjectStore) -> Callable[[str], bytes | None]:
    """``plot_on_request`` one plot at a time (matplotlib is not thread-safe, and a page
    of plots asks for all of them at once); a plot drawn meanwhile is read, not redrawn."""
    lock = threading.Lock()

    def draw(key: str) -> bytes | None:
        with lock:
            if store.exists(key):
                return store.get_bytes(key)
            return plot_on_request(store, key)

    return draw


def _trend_sets(store: ObjectStore, version: str | None, tag: str | None) -> list[tuple]:
    """(version, tag, prefix, rows) of every trend set, newest version first."""
    found = []
    for key in store.list(TRENDS_PREFIX):
        parts = key.split("/")
        if len(parts) != 5 or parts[4] != "summaries.json":
            continue
        if (version and parts[2] != version) or (tag and parts[3] != tag):
            continue
        with store.open(key, "rb") as handle:
            rows = json.loads(handle.read())
        found.append((parts[2], parts[3], "/".join(parts[:4]), rows))
    return sorted(found, key=lambda s: (s[0], s[1]), reverse=True)


def _trend_page(sets: list[tuple]) -> str:
    sections = [
        f"<h2>reco {html.escape(version)} — {html.escape(tag)}</h2>\n"
        + trend_table_html(rows, f"files/{prefix}")
        for version, tag, prefix, rows in sets
    ]
    body = "\n".join(sections) or "<p>No trends yet: they appear after the first run.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>CYGNO quality trends</title>"
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #aaa;padding:2px 6px;font-size:small}</style></head>"
        f"<body><h1>CYGNO quality trends</h1>\n{body}\n</body></html>"
    )


def create_app(
    settings: Settings | None = None,
    *,
    store: ObjectStore | None = None,
    poster: EventPoster | None = None,
    dedup_seconds: float = 600.0,
) -> Starlette:
    """The app; ``poster`` defaults to one for the server ``PREFECT_API_URL`` names."""
    settings = settings or get_settings()
    store = store or store_for(settings)
    poster = poster or EventPoster.from_prefect_settings(
        timeout=settings.prefect_api_timeout_seconds
    )
    token = settings.bridge_token.get_secret_value() if settings.bridge_token else None
    bridge = EventBridge(store, token, poster, dedup_seconds)
    draw = _drawer(store)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "pending_events": poster.pending,
                "delivered_events": poster.delivered,
                "dropped_events": poster.dropped,
                "last_error": poster.last_error,
            }
        )

    async def files(request: Request) -> Response:
        key = request.path_params["key"]
        try:
            validate_key(key)
        except ValueError as error:
            return _error(400, str(error))
        if not key.startswith(QUALITY_PREFIX):
            return _error(403, "only quality/ objects are served")
        try:
            if not await run_in_threadpool(store.exists, key):
                drawn = await run_in_threadpool(draw, key)
                if drawn is None:
                    return _error(404, f"no object {key}")
                headers = {**FILE_HEADERS, "Content-Length": str(len(drawn))}
                body = drawn if request.method == "GET" else b""
                return Response(body, headers=headers, media_type=media_type(key))
            size = await run_in_threadpool(store.size, key)
        except FileNotFoundError:
            return _error(404, f"no object {key}")
        headers = {**FILE_HEADERS, "Content-Length": str(size)}
        if request.method == "HEAD":
            return Response(headers=headers, media_type=media_type(key))
        return StreamingResponse(_stream(store, key), media_type=media_type(key), headers=headers)

    async def trends(request: Request) -> HTMLResponse:
        sets = await run_in_threadpool(
            _trend_sets, store, request.query_params.get("version"), request.query_params.get("tag")
        )
        return HTMLResponse(_trend_page(sets))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await poster.start()
        log.info("bridge up: store %s, Prefect API %s", store.url, poster.api_url)
        try:
            yield {}
        finally:
            await poster.stop()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/s3-events", bridge.handle, methods=["POST"]),
            Route("/files/{key:path}", files, methods=["GET", "HEAD"]),
            Route("/trends", trends, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.bridge = bridge
    app.state.poster = poster
    return app


def serve(settings: Settings | None = None, dedup_seconds: float = 600.0) -> None:
    """Run the app with uvicorn on ``settings.bridge_host:bridge_port`` (blocks)."""
    import uvicorn

    settings = settings or get_settings()
    app = create_app(settings, dedup_seconds=dedup_seconds)
    uvicorn.run(app, host=settings.bridge_host, port=settings.bridge_port, log_level="info")
