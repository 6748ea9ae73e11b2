"""Races that could lose or duplicate work, run with real threads against real
databases: two keys of one run (``.mid.gz`` and ``.mid``) arriving at the same moment
end with one raw-file row and the other key refused with a clear message, whichever
wins."""

from __future__ import annotations

import threading

from cygno.storage import keys
from cygno.storage.catalog import Catalog
from cygno.storage.catalog.runs import RunHasRawFile
from cygno.tasks.ingest import SecondRawFile, ingest
from cygno.tasks.models import RawFile

ROUNDS = 8


def _at_once(*calls) -> list:
    """Run ``calls`` in threads released together; each one's result or exception."""
    start, outcome = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        try:
            outcome[i] = calls[i]()
        except Exception as error:
            outcome[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return outcome


def test_two_keys_of_one_run_written_at_once_make_one_raw_file_row(db_url):
    catalog = Catalog(db_url)
    for run in range(1, ROUNDS + 1):
        uris = [f"s3://b/{keys.raw_key('LNGS', run, suffix)}" for suffix in (".mid.gz", ".mid")]
        outcome = _at_once(
            *(
                lambda u=u, n=run: catalog.upsert_raw_file(u, n, "LNGS", 10, "00000001")
                for u in uris
            )
        )
        refused = [o for o in outcome if isinstance(o, RunHasRawFile)]
        assert len(refused) == 1 and outcome.count(True) == 1, outcome
        (row,) = [r for r in catalog.raw_files() if r.run == run]
        assert {refused[0].uri, refused[0].other} == set(uris) and row.uri == refused[0].other
        assert "second raw file" in str(refused[0]) and row.state == "ingested"
    catalog.close()


def test_two_keys_of_one_run_ingested_at_once_one_is_refused(plat):
    (run,) = plat.simulate(runs=0)  # a pedestal run: read in a moment
    data = plat.store.get_bytes(run.key)
    other = keys.raw_key("LNGS", run.run_number, ".mid")
    plat.store.put_bytes(other, data)  # the same bytes under the other suffix
    uris = [plat.store.uri(run.key), plat.store.uri(other)]

    outcome = _at_once(*(lambda u=u: ingest.fn(u) for u in uris))

    (refused,) = [o for o in outcome if isinstance(o, SecondRawFile)]
    (ingested,) = [o for o in outcome if isinstance(o, RawFile)]
    (row,) = [r for r in plat.catalog.raw_files() if r.run == run.run_number]
    assert row.uri == ingested.uri and row.state == "ingested"
    assert f"second raw file for LNGS run {run.run_number}, which already has {row.uri}" in str(
        refused
    )
    assert not plat.catalog.run(run.run_number, "LNGS").failures  # a refusal is no failure
    for key in (run.key, other):  # nothing moved, nothing lost
        assert plat.store.get_bytes(key) == data
