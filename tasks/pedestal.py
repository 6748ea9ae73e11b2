"""pedestal_for: the pedestal maps that serve a data run — found in ``pedestals/`` or
built once from the pedestal run the DAQ logbook names."""

from __future__ import annotations

import io

from prefect import task
from prefect.tasks import exponential_backoff

from cygno.reco.pedestal import compute_pedestal
from cygno.storage import keys
from cygno.tasks import resources
from cygno.tasks.models import Pedestal


class NoPedestalRun(LookupError):
    """The logbook names no usable pedestal run at or before this run."""


@task(
    name="pedestal-for",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    timeout_seconds=1800,
)
def pedestal_for(run: int, tag: str, max_pictures: int = 200) -> Pedestal:
    """Find or build the pedestal maps for ``run`` and record the pairing in the catalog."""
    ped_run = resources.logbook().pedestal_for(run)
    if ped_run is None:
        raise NoPedestalRun(
            f"no pedestal run ≤ {run} in the DAQ logbook "
            "(pedestal_run = 1, HV_STATE = 0, ≥ 100 events)"
        )
    store = resources.store()
    key = keys.pedestal_key(tag, ped_run)
    if not store.exists(key):
        raw = _raw_key_of(store, tag, ped_run)
        with store.open(raw, "rb") as stream:
            maps = compute_pedestal(stream, max_pictures=max_pictures)
        buffer = io.BytesIO()  # np.savez needs a seekable file
        maps.save(buffer)
        store.put_bytes(key, buffer.getvalue())
    resources.catalog().upsert_run(run, tag, pedestal_run=ped_run)
    return Pedestal(run=ped_run, key=key)


def _raw_key_of(store, tag: str, run: int) -> str:
    for suffix in keys.RAW_SUFFIXES[::-1]:
        key = keys.raw_key(tag, run, suffix)
        if store.exists(key):
            return key
    raise FileNotFoundError(f"pedestal run {run} ({tag}) has no raw file in {store.url}/raw/")
