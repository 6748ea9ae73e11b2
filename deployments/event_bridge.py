"""S3 bucket notifications → Prefect events ``cygno.raw.arrived``.

Prefect's own webhooks exist only in Prefect Cloud, so this bridge receives the
notifications that MinIO sends to a webhook target, and AWS S3's (the same ``Records``
shape) either raw or inside the SNS envelope an SNS HTTPS subscription delivers
(``{"Type": "Notification", "TopicArn": …, "Message": "<S3 event JSON>"}``), and posts
Prefect events to the server's events API (``POST {api}/events``, a JSON list of events;
the server answers 204). AWS's ``s3:TestEvent`` (sent when notifications are
configured) is answered and ignored; an SNS ``SubscriptionConfirmation`` is logged with
its SubscribeURL for the operator to confirm (the bridge calls nothing on AWS).

Per record: ``eventName`` ``s3:ObjectCreated:*`` (MinIO) or ``ObjectCreated:*`` (AWS),
``s3.bucket.name``, ``s3.object.key`` (URL-encoded, ``+`` for spaces), ``size``,
``eTag``. Every ObjectCreated on ``raw/<tag>/run<NNNNN>.mid*`` in the platform's store
becomes one event::

    {"event": "cygno.raw.arrived",
     "id": uuid5(bucket/key@etag),           # duplicate notification → same id
     "occurred": <eventTime, never in the future>,
     "resource": {"prefect.resource.id": "s3://cygno-data/raw/LNGS/run01234.mid.gz",
                  "prefect.resource.name": "LNGS run01234",
                  "cygno.run": "1234", "cygno.tag": "LNGS", "cygno.key": "raw/…",
                  "cygno.size": "123456", "cygno.etag": "…"},
     "payload": {"bucket": …, "key": …, "size": …, "etag": …, "s3_event": …}}

MinIO setup (it sends ``Authorization: Bearer <auth_token>``)::

    mc admin config set ALIAS notify_webhook:cygno \\
        endpoint=http://<bridge host>:4300/s3-events auth_token=$CYGNO_BRIDGE_TOKEN
    mc event add ALIAS/cygno-data arn:minio:sqs::cygno:webhook --event put --prefix raw/

AWS: bucket notification (``s3:ObjectCreated:*``, prefix ``raw/``) to an SNS topic, and
an HTTPS subscription of the topic to ``https://cygno:$CYGNO_BRIDGE_TOKEN@<bridge>/s3-events``
(SNS authenticates with HTTP basic credentials from the URL: the password is the token).

The resource id is the object's URI in the platform's store (``ObjectStore.uri``), so
the flow can open it as is. An ``s3://`` store accepts only its own bucket; a ``file://``
store (the local demo) takes the key as a store key whatever the bucket.

The DAQ side never waits on Prefect: events are queued and a background task delivers
them in batches, retrying with back-off. Duplicates are dropped twice: within the
bridge by a time window over event ids, and by the Prefect server itself, which keeps
one event per id and evaluates triggers once per id.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hmac
import json
import logging
import ssl
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from cygno.events import RAW_ARRIVED, raw_file_resource
from cygno.resources import prefect_api_failure
from cygno.storage.keys import parse_raw_key
from cygno.storage.objectstore import ObjectStore

log = logging.getLogger("cygno.bridge")

#: Namespace of the event ids: uuid5(EVENT_NAMESPACE, "<bucket>/<key>@<etag>").
EVENT_NAMESPACE = uuid.UUID("6a1c3f7e-2b0d-5c4e-9f3a-c7e1d2b4a5f6")
MAX_BODY_BYTES = 4 * 1024 * 1024
#: S3/SNS notifications nest about six levels; anything much deeper is not one.
MAX_JSON_DEPTH = 32


class NotificationError(ValueError):
    """The request body is not an S3 notification; the message says why."""


class BodyTooLarge(ValueError):
    """The request body is larger than the bridge reads."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, streamed and counted as it arrives: a chunked or lying body is cut off
    at ``limit`` bytes instead of being read whole first (BodyTooLarge)."""
    declared = request.headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"declared {declared} bytes, more than {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _deeper_than(doc: Any, limit: int) -> bool:
    """Whether ``doc`` nests containers more than ``limit`` levels (iterative: no
    recursion for a hostile document)."""
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


class LogThrottle:
    """At most ``burst`` lines per ``seconds`` from one noisy source (hostile clients
    must not flood the log); the number left out is reported with the next line."""

    def __init__(self, burst: int = 20, seconds: float = 60.0) -> None:
        self.burst, self.seconds = burst, seconds
        self._window_start = time.monotonic()
        self._count = 0
        self.suppressed = 0

    def __call__(self, level: int, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._window_start >= self.seconds:
            self._window_start, self._count = now, 0
        if self._count >= self.burst:
            self.suppressed += 1
            return
        self._count += 1
        if self.suppressed:
            message += f" ({self.suppressed} similar lines suppressed)"
            self.suppressed = 0
        log.log(level, message, *args)


@dataclass(frozen=True)
class S3Record:
    """One record of a bucket notification (key already URL-decoded)."""

    event_name: str  # as sent: "s3:ObjectCreated:Put" or "ObjectCreated:Put"
    bucket: str
    key: str
    size: int | None
    etag: str
    sequencer: str
    event_time: dt.datetime | None

    @property
    def created(self) -> bool:
        return self.event_name.removeprefix("s3:").startswith("ObjectCreated:")

    @property
    def event_id(self) -> uuid.UUID:
        return event_id(self.bucket, self.key, self.etag or self.sequencer)


def event_id(bucket: str, key: str, etag: str) -> uuid.UUID:
    """Deterministic Prefect event id of one object version (the server dedups by id)."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{bucket}/{key}@{etag}")


def _field(mapping: Any, path: str, where: str) -> Any:
    value = mapping
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise NotificationError(f"{where}: missing {path}")
        value = value[part]
    return value


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _record(raw: Any, index: int) -> S3Record:
    where = f"Records[{index}]"
    if not isinstance(raw, Mapping):
        raise NotificationError(f"{where} is not an object")
    name = _field(raw, "eventName", where)
    bucket = _field(raw, "s3.bucket.name", where)
    key = _field(raw, "s3.object.key", where)
    for label, value in (("eventName", name), ("s3.bucket.name", bucket), ("s3.object.key", key)):
        if not isinstance(value, str) or not value:
            raise NotificationError(f"{where}: {label} must be a non-empty string")
    obj = raw["s3"]["object"]
    size = obj.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise NotificationError(f"{where}: s3.object.size must be a non-negative integer")
    etag = obj.get("eTag", obj.get("etag", ""))
    sequencer = obj.get("sequencer", "")
    if not isinstance(etag, str) or not isinstance(sequencer, str):
        raise NotificationError(f"{where}: s3.object.eTag and sequencer must be strings")
    record = S3Record(
        event_name=name,
        bucket=bucket,
        key=unquote_plus(key),
        size=size,
        etag=etag.strip('"'),
        sequencer=sequencer,
        event_time=_time(raw.get("eventTime")),
    )
    if record.created and size is None:
        raise NotificationError(f"{where}: ObjectCreated record without s3.object.size")
    if record.created and not (record.etag or record.sequencer):
        raise NotificationError(f"{where}: ObjectCreated record without eTag or sequencer")
    return record


def _sns(doc: Mapping[str, Any]) -> tuple[list[S3Record], str | None]:
    """The S3 notification inside an SNS envelope, or a note for SNS's own messages."""
    kind, topic = doc.get("Type"), doc.get("TopicArn")
    if kind == "Notification":
        message = doc.get("Message")
        if not isinstance(message, str):
            raise NotificationError("SNS Notification without a Message string")
        records, note = parse_notification(message.encode(), envelope=False)
        return records, note and f"{note} via SNS topic {topic}"
    if kind == "SubscriptionConfirmation":
        log.warning(
            "SNS subscription of topic %s awaits confirmation: open %s or run "
            "`aws sns confirm-subscription --topic-arn %s --token <Token of the message>`",
            topic,
            doc.get("SubscribeURL"),
            topic,
        )
        return [], f"SNS SubscriptionConfirmation for {topic}: confirm it (see the bridge log)"
    if kind == "UnsubscribeConfirmation":
        return [], f"SNS UnsubscribeConfirmation for {topic}"
    raise NotificationError(f"SNS message of unknown Type {kind!r}")


def parse_notification(body: bytes, envelope: bool = True) -> tuple[list[S3Record], str | None]:
    """Records of a MinIO/AWS notification (unwrapped from SNS when ``envelope``), and a
    note for bodies that carry none (``s3:TestEvent``, SNS subscription messages).
    Raises :class:`NotificationError` for anything else."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NotificationError(f"malformed JSON: {error}") from None
    except RecursionError:
        doc = None  # nested past Python's own limit
    if doc is None or _deeper_than(doc, MAX_JSON_DEPTH):
        raise NotificationError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(doc, Mapping):
        raise NotificationError("notification must be a JSON object")
    if envelope and "TopicArn" in doc and "Type" in doc:
        return _sns(doc)
    if "Records" not in doc:
        if doc.get("Event") == "s3:TestEvent":
            return [], "s3:TestEvent (no records)"
        raise NotificationError("notification has no Records array")
    records = doc["Records"]
    if not isinstance(records, list):
        raise NotificationError("Records must be an array")
    return [_record(raw, i) for i, raw in enumerate(records)], None


def raw_arrived_event(
    record: S3Record, uri: str, tag: str, run: int, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The Prefect event (JSON body for ``POST /events``) for one raw file."""
    now = now or dt.datetime.now(dt.UTC)
    occurred = min(record.event_time or now, now)
    return {
        "id": str(record.event_id),
        "occurred": occurred.isoformat(),
        "event": RAW_ARRIVED,
        "resource": raw_file_resource(uri, tag, run, record.key, record.size, record.etag),
        "related": [],
        "payload": {
            "bucket": record.bucket,
            "key": record.key,
            "size": record.size,
            "etag": record.etag,
            "sequencer": record.sequencer,
            "s3_event": record.event_name,
        },
    }


class DedupWindow:
    """Event ids seen in the last ``seconds`` (monotonic clock, bounded memory)."""

    def __init__(self, seconds: float, max_entries: int = 100_000) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._seen: OrderedDict[uuid.UUID, float] = OrderedDict()

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest, when = next(iter(self._seen.items()))
            if now - when < self.seconds and len(self._seen) <= self.max_entries:
                break
            del self._seen[oldest]

    def contains(self, key: uuid.UUID) -> bool:
        self._expire(time.monotonic())
        return key in self._seen

    def add(self, key: uuid.UUID) -> None:
        self._seen[key] = time.monotonic()
        self._seen.move_to_end(key)
        self._expire(time.monotonic())


def prefect_api_headers() -> dict[str, str]:
    """Authorization for the Prefect API as Prefect's client sends it (auth string
    for self-hosted servers, else API key); empty for an open server."""
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    if api.auth_string:
        token = base64.b64encode(api.auth_string.get_secret_value().encode()).decode()
        return {"Authorization": f"Basic {token}"}
    if api.key:
        return {"Authorization": f"Bearer {api.key.get_secret_value()}"}
    return {}


class EventPoster:
    """Delivers queued events to ``POST {api_url}/events`` in batches, in order.

    Transient failures (network, 408, 429, 5xx) are retried with exponential back-off
    while new events keep queueing; other 4xx drop the batch with an error log, since
    resending the same body cannot succeed. Events still queued at :meth:`stop` after
    the drain timeout are logged; the sentinel flow catches those files up.
    """

    def __init__(
        self,
        api_url: str,
        headers: Mapping[str, str] | None = None,
        *,
        max_pending: int = 10_000,
        batch_size: int = 100,
        timeout: float = 10.0,
        max_backoff: float = 30.0,
        drain_timeout: float = 10.0,
        verify: bool | ssl.SSLContext = True,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._headers = dict(headers or {})
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.drain_timeout = drain_timeout
        self.verify = verify
        self.delivered = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._in_flight = 0
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._idle: asyncio.Event | None = None

    @classmethod
    def from_prefect_settings(cls, **kwargs: Any) -> EventPoster:
        """A poster for the server that ``PREFECT_API_URL`` names, with its credentials."""
        from prefect.settings import get_current_settings

        api = get_current_settings().api
        if not api.url:
            raise RuntimeError("PREFECT_API_URL is not set: the bridge posts events there")
        verify: bool | ssl.SSLContext = not api.tls_insecure_skip_verify
        if verify and api.ssl_cert_file:
            verify = ssl.create_default_context(cafile=api.ssl_cert_file)
        return cls(api.url, prefect_api_headers(), verify=verify, **kwargs)

    @property
    def pending(self) -> int:
        """Events not yet accepted by the server (queued or being posted)."""
        return (self._queue.qsize() if self._queue else 0) + self._in_flight

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._client = httpx.AsyncClient(
            base_url=self.api_url,
            headers=self._headers,
            timeout=self.timeout,
            verify=self.verify,
        )
        self._task = asyncio.create_task(self._run(), name="cygno-event-poster")

    def offer(self, events: list[dict[str, Any]]) -> bool:
        """Queue all ``events`` or none (False when the queue is full)."""
        assert self._queue is not None and self._idle is not None, "poster not started"
        if self.pending + len(events) > self.max_pending:
            return False
        for event in events:
            self._queue.put_nowait(event)
        if events:
            self._idle.clear()
        return True

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was delivered or dropped (True) or timeout."""
        assert self._idle is not None
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Give queued events ``drain_timeout`` seconds to go out, then stop."""
        if self._task is None:
            return
        if not await self.wait_idle(self.drain_timeout):
            log.error(
                "stopping with %d undelivered event(s); the sentinel will catch them up",
                self.pending,
            )
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        assert self._client is not None
        await self._client.aclose()
        self._task = None

    async def _run(self) -> None:
        assert self._queue is not None and self._idle is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_flight = len(batch)
            try:
                await self._deliver(batch)
            finally:
                self._in_flight = 0
            if self._queue.empty():
                self._idle.set()

    async def _deliver(self, batch: list[dict[str, Any]]) -> None:
        assert self._client is not None
        delay = 0.5
        while True:
            try:
                response = await self._client.post("/events", json=batch)
            except httpx.TransportError as error:  # names the API and the wait
                problem = str(prefect_api_failure(self.api_url, error, self.timeout))
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.is_success:
                    self.delivered += len(batch)
                    self.last_error = None
                    log.info("posted %d event(s) to the Prefect API", len(batch))
                    return
                problem = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code < 500 and response.status_code not in (408, 429):
                    self.dropped += len(batch)
                    self.last_error = problem
                    log.error("Prefect API refused %d event(s): %s", len(batch), problem)
                    return
            self.last_error = problem
            log.warning("posting events failed (%s); retrying in %.1f s", problem, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)


def _credential(request: Request) -> str | None:
    """The token a request carries: ``Bearer <token>`` (MinIO), or the password of
    ``Basic`` credentials (SNS, which takes them from the subscription URL)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            _, colon, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return password if colon and password else None
    return None


class EventBridge:
    """The ``POST /s3-events`` handler: authenticate, parse, filter, dedup, queue."""

    def __init__(
        self,
        store: ObjectStore,
        token: str | None,
        poster: EventPoster,
        dedup_seconds: float = 600.0,
    ) -> None:
        self.store = store
        self._token = token.encode() if token else None
        self.poster = poster
        self.dedup = DedupWindow(dedup_seconds)
        self._log = LogThrottle()
        self._s3 = store.url.startswith("s3://")
        if self._token is None:
            log.warning("CYGNO_BRIDGE_TOKEN is not set: every notification gets 401")

    def _log_summary(self, accepted: list[dict[str, Any]], ignored: list[dict[str, Any]]) -> None:
        """One line per request, whatever the number of records in it."""
        if accepted:
            first = accepted[0]["uri"]
            more = f" and {len(accepted) - 1} more" if len(accepted) > 1 else ""
            log.info("queued %s for %s%s", RAW_ARRIVED, first, more)
        if ignored:
            first = ignored[0]
            more = f" and {len(ignored) - 1} more" if len(ignored) > 1 else ""
            self._log(logging.INFO, "ignored %.200s: %.200s%s", first["key"], first["reason"], more)

    def _authorised(self, request: Request) -> bool:
        given = _credential(request)
        if self._token is None or given is None:
            return False
        return hmac.compare_digest(given.encode(), self._token)

    def _store_key(self, record: S3Record) -> str:
        """The record's key inside our store; ValueError if it lies outside it."""
        if self._s3:
            return self.store.key_of(f"s3://{record.bucket}/{record.key}")
        return record.key

    def _route(self, record: S3Record) -> tuple[dict[str, Any] | None, str]:
        """(event, "") for a new raw file, else (None, reason it is ignored)."""
        if not record.created:
            return None, f"event {record.event_name} is not ObjectCreated"
        try:
            key = self._store_key(record)
        except ValueError:
            return None, f"bucket {record.bucket!r} is not the platform's store {self.store.url}"
        try:
            tag, run = parse_raw_key(key)
        except ValueError as error:
            return None, f"not a raw run file: {error}"  # also an alias of a run's key
        if self.dedup.contains(record.event_id):
            return None, (
                f"duplicate of event {record.event_id} within the "
                f"{self.dedup.seconds:g} s dedup window"
            )
        return raw_arrived_event(record, self.store.uri(key), tag, run), ""

    async def handle(self, request: Request) -> JSONResponse:
        if not self._authorised(request):
            return JSONResponse(
                {"error": "missing or wrong bearer token"},
                status_code=401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="cygno-bridge", Basic realm="cygno-bridge"'
                },
            )
        try:
            body = await read_body(request)
        except BodyTooLarge as error:
            self._log(logging.WARNING, "rejected notification body: %s", error)
            return JSONResponse({"error": "notification body too large"}, status_code=413)
        try:
            records, note = parse_notification(body)
        except NotificationError as error:
            self._log(logging.WARNING, "rejected notification: %.200s", error)
            return JSONResponse({"error": str(error)}, status_code=400)

        accepted: list[dict[str, Any]] = []
        ignored: list[dict[str, Any]] = []
        events: dict[str, dict[str, Any]] = {}
        for record in records:
            event, reason = self._route(record)
            if event is not None and event["id"] in events:
                event, reason = None, f"duplicate of event {event['id']} in the same body"
            if event is None:
                ignored.append({"key": record.key, "event": record.event_name, "reason": reason})
                continue
            events[event["id"]] = event
            resource = event["resource"]
            accepted.append(
                {
                    "key": record.key,
                    "uri": resource["prefect.resource.id"],
                    "tag": resource["cygno.tag"],
                    "run": int(resource["cygno.run"]),
                    "event_id": event["id"],
                }
            )
        if not self.poster.offer(list(events.values())):
            log.error("event queue full (%d pending): answering 503", self.poster.pending)
            return JSONResponse(
                {"error": "event queue full, retry later"},
                status_code=503,
                headers={"Retry-After": "30"},
            )
        for event in events.values():
            self.dedup.add(uuid.UUID(event["id"]))
        self._log_summary(accepted, ignored)
        response: dict[str, Any] = {"accepted": accepted, "ignored": ignored}
        if note:
            response["note"] = note
        return JSONResponse(response)
