"""The event bridge and plot server against a real Prefect server and real stores."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import warnings
from collections.abc import Iterator
from urllib.parse import quote_plus

import pytest

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 for its TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from cygno.deployments.event_bridge import EventPoster, event_id
from cygno.deployments.webapp import create_app
from cygno.events import RAW_ARRIVED
from cygno.reco import quality
from cygno.settings import Settings
from cygno.storage.objectstore import ObjectStore

TOKEN = "s3cr3t-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@pytest.fixture(scope="session")
def prefect_api_url(prefect_api: str) -> str:
    """The session's one ephemeral Prefect server (tests/conftest.py)."""
    return prefect_api


def make_client(api_url: str, store: ObjectStore, tmp_path, dedup_seconds: float = 600.0):
    settings = Settings(bridge_token=TOKEN, store_url=store.url, data_dir=tmp_path)
    app = create_app(
        settings, store=store, poster=EventPoster(api_url), dedup_seconds=dedup_seconds
    )
    return TestClient(app)


@pytest.fixture
def local_store(tmp_path) -> ObjectStore:
    return ObjectStore((tmp_path / "store").as_uri())


@pytest.fixture
def client(prefect_api_url, local_store, tmp_path) -> Iterator[TestClient]:
    with make_client(prefect_api_url, local_store, tmp_path) as test_client:
        yield test_client


def record(
    key: str,
    bucket: str = "cygno-data",
    event: str = "s3:ObjectCreated:Put",
    etag: str = "0123456789abcdef0123456789abcdef",
    size: int = 123456,
) -> dict:
    """One record as MinIO sends it (key URL-encoded, as both MinIO and AWS do)."""
    return {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "eventName": event,
        "userIdentity": {"principalId": "daq"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": quote_plus(key),
                "size": size,
                "eTag": etag,
                "contentType": "application/gzip",
                "sequencer": "17A1B2C3D4E5F607",
            },
        },
    }


def notification(*records: dict) -> dict:
    first = records[0]
    return {
        "EventName": first["eventName"],
        "Key": f"{first['s3']['bucket']['name']}/{first['s3']['object']['key']}",
        "Records": list(records),
    }


def read_back(api_url: str, uri: str, expect: int = 1, timeout: float = 30.0) -> list:
    """Events for ``uri`` stored by the server, polled until ``expect`` show up."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.settings import PREFECT_API_URL, temporary_settings

    query = EventFilter(
        event=EventNameFilter(name=[RAW_ARRIVED]), resource=EventResourceFilter(id=[uri])
    )
    deadline = time.monotonic() + timeout
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as api:
        while True:
            events = api.read_events(filter=query, limit=50).events
            if len(events) >= expect or time.monotonic() > deadline:
                return events
            time.sleep(0.25)


def wait_delivered(client: TestClient, count: int, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = client.get("/healthz").json()
        if health["delivered_events"] >= count and health["pending_events"] == 0:
            return health
        assert time.monotonic() < deadline, health
        time.sleep(0.05)


# --------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
    ids=["missing", "wrong", "no-scheme", "basic"],
)
def test_token_is_required(client, headers):
    body = notification(record("raw/LNGS/run01234.mid.gz"))
    response = client.post("/s3-events", json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text
    assert client.get("/healthz").json()["delivered_events"] == 0


def test_no_configured_token_refuses_everything(prefect_api_url, local_store, tmp_path):
    settings = Settings(bridge_token=None, store_url=local_store.url, data_dir=tmp_path)
    app = create_app(settings, store=local_store, poster=EventPoster(prefect_api_url))
    with TestClient(app) as test_client:
        body = notification(record("raw/LNGS/run01234.mid.gz"))
        assert test_client.post("/s3-events", json=body, headers=AUTH).status_code == 401


# --------------------------------------------------------------------------- malformed bodies


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"EventName": "s3:ObjectCreated:Put"}', "no Records"),
        (b'{"Records": {"a": 1}}', "Records must be an array"),
        (b'{"Records": [42]}', "Records[0] is not an object"),
        (b'{"Records": [{"eventName": "s3:ObjectCreated:Put"}]}', "missing s3.bucket.name"),
    ],
)
def test_malformed_bodies_get_400_with_the_reason(client, body, reason):
    response = client.post("/s3-events", content=body, headers=AUTH)
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_record_field_types_are_checked(client):
    bad_size = record("raw/LNGS/run01234.mid.gz")
    bad_size["s3"]["object"]["size"] = "big"
    no_size = record("raw/LNGS/run01235.mid.gz")
    del no_size["s3"]["object"]["size"]
    for rec, reason in ((bad_size, "size must be"), (no_size, "without s3.object.size")):
        good = record("raw/LNGS/run01236.mid.gz")
        response = client.post("/s3-events", json=notification(good, rec), headers=AUTH)
        assert response.status_code == 400
        assert reason in response.json()["error"]
        assert "Records[1]" in response.json()["error"]
    time.sleep(0.2)
    assert client.get("/healthz").json()["delivered_events"] == 0  # all or nothing


def test_oversized_body_is_refused(client):
    response = client.post("/s3-events", content=b" " * (4 * 1024 * 1024 + 1), headers=AUTH)
    assert response.status_code == 413


def test_aws_test_event_is_acknowledged(client):
    body = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "cygno-data"}
    response = client.post("/s3-events", json=body, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"accepted": [], "ignored": [], "note": "s3:TestEvent (no records)"}


TOPIC = "arn:aws:sns:eu-south-1:123456789012:cygno-raw"
SNS_AUTH = {  # SNS sends the basic credentials of the subscription URL; the password is ours
    "Authorization": "Basic " + base64.b64encode(f"cygno:{TOKEN}".encode()).decode(),
    "x-amz-sns-message-type": "Notification",
}


def sns(message: dict | str, kind: str = "Notification", **fields) -> dict:
    """An SNS HTTPS delivery as AWS sends it: the S3 event JSON is a string inside."""
    return {
        "Type": kind,
        "MessageId": "2f3c5a1e-8f7d-5b8e-9a61-3d0e4c7b9f10",
        "TopicArn": TOPIC,
        "Subject": "Amazon S3 Notification",
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": "2026-12-04T15:00:00.000Z",
        "SignatureVersion": "2",
        "Signature": "c2lnbmF0dXJl",
        "SigningCertURL": "https://sns.eu-south-1.amazonaws.com/SimpleNotificationService.pem",
        **fields,
    }


def test_aws_sns_envelope_is_unwrapped(client):
    rec = record("raw/LNGS/run01234.mid.gz", etag="5d41402abc4b2a76b9719d911017c592")
    rec["eventName"] = "ObjectCreated:Put"  # AWS spelling
    rec["eventSource"] = "aws:s3"
    response = client.post("/s3-events", json=sns({"Records": [rec]}), headers=SNS_AUTH)
    assert response.status_code == 200
    [accepted] = response.json()["accepted"]
    assert (accepted["tag"], accepted["run"]) == ("LNGS", 1234)
    test = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "cygno-data"}
    answer = client.post("/s3-events", json=sns(test), headers=SNS_AUTH).json()
    assert answer["accepted"] == [] and answer["note"].startswith("s3:TestEvent")
    assert TOPIC in answer["note"]
    wait_delivered(client, 1)


def test_sns_subscription_messages_are_answered_and_ignored(client, caplog):
    confirm = sns(
        "You have chosen to subscribe to the topic …",
        kind="SubscriptionConfirmation",
        Token="2336412f37fb687f5d51e6e2425",
        SubscribeURL="https://sns.eu-south-1.amazonaws.com/?Action=ConfirmSubscription",
    )
    with caplog.at_level("WARNING", logger="cygno.bridge"):
        answer = client.post("/s3-events", json=confirm, headers=SNS_AUTH)
    assert answer.status_code == 200 and answer.json()["accepted"] == []
    assert "confirm" in answer.json()["note"]
    assert "Action=ConfirmSubscription" in caplog.text  # the operator's link
    bad = client.post("/s3-events", json=sns("not json"), headers=SNS_AUTH)
    assert bad.status_code == 400 and "malformed JSON" in bad.json()["error"]
    odd = client.post("/s3-events", json=sns("{}", kind="Surprise"), headers=SNS_AUTH)
    assert odd.status_code == 400 and "Surprise" in odd.json()["error"]
    wrong = {"Authorization": "Basic " + base64.b64encode(b"cygno:wrong").decode()}
    refused = client.post("/s3-events", json=sns("{}"), headers=wrong)
    assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]


# --------------------------------------------------------------------------- routing


def test_other_keys_and_events_are_ignored_with_reasons(client):
    body = notification(
        record("reco/0.1.0+abc/LNGS/reco_run01234.root"),
        record("raw/LNGS/notes.txt"),
        record("raw/LNGS/run01234.mid.gz", event="s3:ObjectRemoved:Delete"),
        record("raw/../etc/run01234.mid.gz"),
    )
    response = client.post("/s3-events", json=body, headers=AUTH)
    assert response.status_code == 200
    answer = response.json()
    assert answer["accepted"] == []
    reasons = [item["reason"] for item in answer["ignored"]]
    assert all(reasons[i].startswith("not a raw run file: ") for i in (0, 1, 3))
    assert "'..'" in reasons[3]
    assert reasons[2] == "event s3:ObjectRemoved:Delete is not ObjectCreated"
    assert answer["ignored"][0]["key"] == "reco/0.1.0+abc/LNGS/reco_run01234.root"


def test_s3_store_accepts_only_its_bucket(prefect_api_url, s3_server, tmp_path):
    bucket = s3_server.new_bucket()
    store = ObjectStore(f"s3://{bucket}", s3_server.storage_options())
    with make_client(prefect_api_url, store, tmp_path) as test_client:
        body = notification(
            record("raw/LNGS/run00077.mid.gz", bucket="someone-else"),
            record("raw/LNGS/run00077.mid.gz", bucket=bucket),
        )
        answer = test_client.post("/s3-events", json=body, headers=AUTH).json()
        assert "is not the platform's store" in answer["ignored"][0]["reason"]
        assert [a["uri"] for a in answer["accepted"]] == [f"s3://{bucket}/raw/LNGS/run00077.mid.gz"]
        wait_delivered(test_client, 1)


# --------------------------------------------------------------------------- events in Prefect


def test_raw_file_becomes_a_prefect_event(prefect_api_url, s3_server, tmp_path):
    bucket = s3_server.new_bucket()
    store = ObjectStore(f"s3://{bucket}", s3_server.storage_options())
    key = "raw/LNGS/run01234.mid.gz"
    uri = f"s3://{bucket}/{key}"
    rec = record(key, bucket=bucket, etag='"9b2cf535f27731c974343645a3985328"', size=987654)
    rec["eventName"] = "ObjectCreated:Put"  # AWS spelling
    with make_client(prefect_api_url, store, tmp_path) as test_client:
        started = time.monotonic()
        response = test_client.post("/s3-events", json={"Records": [rec]}, headers=AUTH)
        assert time.monotonic() - started < 2.0  # queued, not posted inline
        assert response.status_code == 200
        expected_id = str(event_id(bucket, key, "9b2cf535f27731c974343645a3985328"))
        assert response.json()["accepted"] == [
            {"key": key, "uri": uri, "tag": "LNGS", "run": 1234, "event_id": expected_id}
        ]
        wait_delivered(test_client, 1)

    events = read_back(prefect_api_url, uri)
    assert len(events) == 1
    event = events[0]
    assert str(event.id) == expected_id
    assert event.event == RAW_ARRIVED
    assert event.resource.id == uri
    labels = dict(event.resource)
    assert labels["cygno.run"] == "1234"
    assert labels["cygno.tag"] == "LNGS"
    assert labels["cygno.size"] == "987654"
    assert labels["cygno.etag"] == "9b2cf535f27731c974343645a3985328"
    assert event.payload["s3_event"] == "ObjectCreated:Put"


def test_duplicate_notifications_give_one_event(prefect_api_url, local_store, tmp_path):
    key = "raw/LNF/run00042.mid.lz4"
    uri = local_store.uri(key)
    body = notification(record(key))
    with make_client(prefect_api_url, local_store, tmp_path) as test_client:
        first = test_client.post("/s3-events", json=body, headers=AUTH).json()
        second = test_client.post("/s3-events", json=body, headers=AUTH).json()
        twice = test_client.post(
            "/s3-events", json=notification(record(key), record(key)), headers=AUTH
        ).json()
        wait_delivered(test_client, 1)
    event = first["accepted"][0]["event_id"]
    assert first["accepted"][0]["uri"] == uri.replace("%2B", "+") == uri
    assert second["accepted"] == twice["accepted"] == []
    assert "dedup window" in second["ignored"][0]["reason"]
    assert event in second["ignored"][0]["reason"]

    # A restarted bridge (empty window) sends the same id again: the server keeps one.
    with make_client(prefect_api_url, local_store, tmp_path, dedup_seconds=0) as restarted:
        again = restarted.post("/s3-events", json=body, headers=AUTH).json()
        assert again["accepted"][0]["event_id"] == event
        wait_delivered(restarted, 1)
    time.sleep(1.5)  # three persister flushes
    events = read_back(prefect_api_url, uri)
    assert [str(e.id) for e in events] == [event]

    # A new upload of the same key (new etag) is a new event.
    with make_client(prefect_api_url, local_store, tmp_path) as test_client:
        new = test_client.post(
            "/s3-events", json=notification(record(key, etag="ffff")), headers=AUTH
        ).json()
        assert new["accepted"][0]["event_id"] != event
        wait_delivered(test_client, 1)
    assert len(read_back(prefect_api_url, uri, expect=2)) == 2


# --------------------------------------------------------------------------- files and trends


def test_files_serves_quality_objects_only(client, local_store):
    key = "quality/0.1.0+abc/LNGS/run01234/sc_integral.png"
    local_store.put_bytes(key, PNG)
    local_store.put_bytes("quality/0.1.0+abc/LNGS/run01234/summary.json", b'{"flag": "good"}')
    local_store.put_bytes("raw/LNGS/run01234.mid.gz", b"secret raw data")

    response = client.get(f"/files/{key}")
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(PNG))
    head = client.head(f"/files/{key}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(PNG))
    summary = client.get("/files/quality/0.1.0+abc/LNGS/run01234/summary.json")
    assert summary.headers["content-type"] == "application/json"
    assert summary.json() == {"flag": "good"}

    assert client.get("/files/raw/LNGS/run01234.mid.gz").status_code == 403
    for sneaky in (
        "/files/quality/..%2F..%2Fraw/LNGS/run01234.mid.gz",
        "/files/quality/%2E%2E/raw/LNGS/run01234.mid.gz",
        "/files/quality//run01234.png",
        "/files/%2Fetc/passwd",
    ):
        response = client.get(sneaky)
        assert response.status_code == 400, sneaky
        assert b"secret" not in response.content
    assert client.get("/files/quality/0.1.0+abc/LNGS/run09999/none.png").status_code == 404
    assert client.get("/files/quality/0.1.0+abc").status_code == 404  # a folder


def test_files_draws_a_quality_plot_left_for_later_and_keeps_it(client, local_store):
    from tests.reco.test_quality import _narrow_run

    prefix = "quality/0.1.0+abc/LNGS/run00005/"
    report = quality.run_quality(_narrow_run(), local_store, prefix, plots=False)
    key = report.files["sc_integral.png"]
    assert not local_store.exists(key)

    head = client.head(f"/files/{key}")
    assert head.status_code == 200 and head.headers["content-type"] == "image/png"
    response = client.get(f"/files/{key}")
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    assert local_store.get_bytes(key) == response.content  # kept for the next request
    assert client.get(f"/files/{key}").content == response.content
    assert client.get(f"/files/{prefix}no_such_plot.png").status_code == 404
    assert client.get(f"/files/{prefix}summary.png").status_code == 404


def test_trend_page_lists_runs_and_plots(client, local_store):
    summaries = [
        {
            "run": 1201,
            "flag": "good",
            "light_yield": 510.0,
            "light_yield_err": 2.0,
            "clusters_per_picture": 6.1,
            "noise_mean": 2.0,
            "pictures": 400,
        },
        {
            "run": 1200,
            "flag": "bad",
            "light_yield": 380.0,
            "light_yield_err": 2.5,
            "clusters_per_picture": 9.5,
            "noise_mean": 2.9,
            "pictures": 400,
            "flag_reason": "light_yield <b>low</b>",
        },
    ]
    prefix = quality.trend_prefix("0.1.0+abc", "LNGS")
    quality.write_trends(summaries, local_store, prefix)

    page = client.get("/trends")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "reco 0.1.0+abc — LNGS" in text
    assert text.index("<td>1200</td>") < text.index("<td>1201</td>")
    assert "light_yield &lt;b&gt;low&lt;/b&gt;" in text  # escaped
    link = f"files/{prefix}/light_yield.png"
    assert f'src="{link}"' in text
    image = client.get(f"/{link}")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

    assert "No trends yet" in client.get("/trends?tag=LNF").text
    assert json.loads(local_store.get_bytes(f"{prefix}/summaries.json"))[0]["run"] == 1200


# --------------------------------------------------------------------------- delivery


def dead_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api"


def test_unreachable_server_keeps_events_and_full_queue_gets_503(local_store, tmp_path):
    settings = Settings(bridge_token=TOKEN, store_url=local_store.url, data_dir=tmp_path)
    poster = EventPoster(dead_url(), max_pending=1, drain_timeout=0.2)
    with TestClient(create_app(settings, store=local_store, poster=poster)) as test_client:
        first = test_client.post(
            "/s3-events", json=notification(record("raw/LNGS/run00001.mid.gz")), headers=AUTH
        )
        assert first.status_code == 200
        second = test_client.post(
            "/s3-events", json=notification(record("raw/LNGS/run00002.mid.gz")), headers=AUTH
        )
        assert second.status_code == 503
        assert second.headers["retry-after"] == "30"
        time.sleep(0.3)
        health = test_client.get("/healthz").json()
        assert health["pending_events"] == 1
        assert health["delivered_events"] == 0
        assert "ConnectError" in health["last_error"]
        # Refused with 503, so not remembered: MinIO's retry is processed later.
        third = test_client.post(
            "/s3-events", json=notification(record("raw/LNGS/run00002.mid.gz")), headers=AUTH
        )
        assert third.status_code == 503


def test_events_the_server_refuses_are_dropped_not_retried(prefect_api_url):
    import asyncio

    async def scenario() -> EventPoster:
        poster = EventPoster(prefect_api_url, drain_timeout=20)
        await poster.start()
        poster.offer([{"event": "cygno.raw.arrived", "id": "not-a-uuid"}])
        assert await poster.wait_idle(20)
        await poster.stop()
        return poster

    poster = asyncio.run(scenario())
    assert (poster.delivered, poster.dropped) == (0, 1)
    assert poster.last_error.startswith("HTTP 422")
