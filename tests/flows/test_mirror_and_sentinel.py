"""db-mirror (incremental, idempotent) and the sentinel (missed notifications)."""

from __future__ import annotations

from cygno.events import RAW_ARRIVED
from cygno.flows.db_mirror import db_mirror
from cygno.flows.sentinel import sentinel
from cygno.tasks.ingest import ingest
from tests.flows.harness import events_named, wait_for


def test_db_mirror_is_incremental_and_idempotent(plat):
    plat.simulate(runs=2, events=2)
    assert db_mirror() == 3
    assert db_mirror() == 0
    plat.logbook.update_run(2, run_description="rerun: HV trip at minute 3")
    assert db_mirror() == 1
    assert plat.catalog.logbook(2)["run_description"] == "rerun: HV trip at minute 3"
    assert plat.catalog.logbook(3) == {**plat.catalog.logbook(3)}


def test_sentinel_announces_only_what_the_catalog_has_not_seen(plat):
    _pedestal, known, missed = plat.simulate(runs=2, events=2)
    ingest.fn(plat.store.uri(known.key))

    # the pedestal run and the missed one; truth JSON ignored; nothing crashed
    assert sentinel() == {"announced": 2, "restarted": 0}

    missed_uri = plat.store.uri(missed.key)
    (event,) = wait_for(lambda: events_named(RAW_ARRIVED, missed_uri), what="sentinel event")
    assert event["resource"]["cygno.run"] == str(missed.run_number)
    assert event["resource"]["cygno.tag"] == "LNGS"
    assert not events_named(RAW_ARRIVED, plat.store.uri(known.key))
