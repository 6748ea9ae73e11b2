"""process-run overlaps the tape copy with the reconstruction, and still completes a run
only when both succeeded: the chunks never wait for tape, a bad tape copy fails the run."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import psutil
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client

from cygno.flows.process_run import process_run
from cygno.reco.config import load_config, reco_version


def _job_running() -> bool:
    """Whether a chunk job runs now (cold, or a warm worker in a job's sandbox)."""
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if Path(child.cwd()).name.startswith("htcondor-job-"):
                return True
        except psutil.Error:
            continue
    return False


@task(name="hold-tape-slot", tags=["tape"], cache_policy=NO_CACHE)
def _hold_tape_slot(holding: threading.Event, release: threading.Event) -> None:
    holding.set()
    release.wait(timeout=float(os.environ.get("CYGNO_TEST_TAPE_HOLD_SECONDS", "180")))
    release.set()  # after a timeout too: a job seen from now on proves nothing


@flow(name="tape-slot-holder")
def _tape_slot_holder(holding: threading.Event, release: threading.Event) -> None:
    _hold_tape_slot(holding, release)


def test_chunks_run_while_the_tape_copy_cannot_start(plat):
    """The one "tape" slot is held until a chunk job runs: archive-to-tape can only start
    after that, so a flow that waited for tape before its chunks would never see one."""
    _, run = plat.simulate(runs=1, events=4)
    holding, release, seen = threading.Event(), threading.Event(), threading.Event()

    def watch() -> None:
        while not release.is_set():
            if _job_running():
                seen.set()
                break
            release.wait(0.02)
        release.set()

    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag="tape", concurrency_limit=1)
    holder = threading.Thread(target=_tape_slot_holder, args=(holding, release))
    watcher = threading.Thread(target=watch)
    try:
        holder.start()
        assert holding.wait(timeout=120), "the tape slot was never taken"
        watcher.start()
        state = process_run(plat.store.uri(run.key), return_state=True)
    finally:
        release.set()
        holder.join()
        if watcher.is_alive():
            watcher.join()
        with get_client(sync_client=True) as client:
            client.delete_concurrency_limit_by_tag("tape")

    assert seen.is_set(), "no chunk job ran while the tape copy waited for its slot"
    assert state.is_completed(), state.message
    (copy,) = plat.catalog.tape_copies(raw_uri=plat.store.uri(run.key))
    assert copy.state == "ok"


def test_a_tape_copy_that_does_not_read_back_fails_the_run_until_it_is_fixed(plat):
    _, run = plat.simulate(runs=1, events=4)
    uri = plat.store.uri(run.key)
    plat.tape.archive(plat.store, run.key, expected_adler32=run.checksums.adler32)
    on_tape = Path(urlparse(plat.tape.uri(run.key)).path)
    data = bytearray(on_tape.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the copy no longer reads back as the raw file
    on_tape.write_bytes(bytes(data))
    version = reco_version(load_config(plat.settings.reco_config))

    failed = process_run(uri, return_state=True)

    assert failed.is_failed() and "does not read back" in failed.message
    assert plat.catalog.reco_output(run.run_number, "LNGS", version).state == "done"  # did not wait
    (copy,) = plat.catalog.tape_copies(raw_uri=uri)
    assert copy.state == "mismatch"
    (failure,) = plat.catalog.run(run.run_number, "LNGS").failures
    assert failure.step == "process-run" and failure.count == 1

    plat.tape.delete(run.key)  # a human removed the bad copy
    again = process_run(uri, return_state=True)

    assert again.is_completed(), again.message
    result = again.result()
    assert result["chunk_seconds"] == []  # the reconstruction was kept, not redone
    assert plat.tape.verify(run.key, run.checksums.adler32)
    assert {c.state for c in plat.catalog.tape_copies(raw_uri=uri)} >= {"ok"}
