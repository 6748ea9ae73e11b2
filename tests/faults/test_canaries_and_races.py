"""Secret canaries and concurrent triggers, end to end on the platform.

A corrupt run on S3 with canary credentials: the secret appears in no message, no
object, no catalog row and no Prefect log. Two process-runs of one run at once: one
raw-file row, one tape copy, the raw bytes untouched.
"""

from __future__ import annotations

import threading

from cygno.flows.process_run import process_run
from cygno.storage import keys
from tests.flows.harness import api_post, platform, s3_overrides

CANARY = "canary-secret-0b7c41d2"


def _prefect_logs(flow_run_id: str) -> str:
    logs = api_post("logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}})
    return "\n".join(entry["message"] for entry in logs)


def test_no_secret_reaches_messages_objects_catalog_or_logs(
    prefect_api, s3_server, tmp_path, monkeypatch
):
    overrides = s3_overrides(s3_server, s3_server.new_bucket())
    overrides["CYGNO_S3_SECRET_ACCESS_KEY"] = CANARY  # moto accepts any secret
    overrides["CYGNO_BRIDGE_TOKEN"] = CANARY + "-token"
    with platform(tmp_path / "platform", monkeypatch, **overrides) as plat:
        key = keys.raw_key("LNGS", 41)
        plat.store.put_bytes(key, b"\x1f\x8b\x08\x00" + bytes(2000))  # a broken gzip
        state = process_run(plat.store.uri(key), return_state=True)
        assert state.is_failed() and "quarantine" in state.message
        seen = [state.message, _prefect_logs(str(state.state_details.flow_run_id))]
        seen += [plat.store.get_bytes(k).decode("latin-1") for k in plat.store.list("")]
        seen += [(plat.root / "catalog.db").read_bytes().decode("latin-1")]
        seen += [repr(plat.store), repr(plat.settings)]
        assert not [text for text in seen if CANARY in text]


def test_two_process_runs_of_one_run_at_once_write_everything_once(plat):
    (run,) = plat.simulate(runs=0)  # a pedestal run: no reconstruction to wait for
    data = plat.store.get_bytes(run.key)
    start, states = threading.Barrier(2), []

    def trigger(start: threading.Barrier, states: list) -> None:
        start.wait()
        states.append(process_run(plat.store.uri(run.key), return_state=True))

    threads = [threading.Thread(target=trigger, args=(start, states)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert [s.is_completed() for s in states] == [True, True], [s.message for s in states]
    rows = [r for r in plat.catalog.raw_files() if r.run == run.run_number]
    assert len(rows) == 1 and rows[0].state == "ingested"
    (copy,) = plat.catalog.tape_copies(raw_uri=plat.store.uri(run.key))
    assert copy.state == "ok" and plat.tape.verify(run.key, run.checksums.adler32)
    assert plat.store.get_bytes(run.key) == data
    assert [e.key for e in plat.tape.list(keys.RAW_PREFIX)] == [run.key]
