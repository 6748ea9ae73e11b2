"""pedestal_for: the pedestal maps that serve a data run — found in ``pedestals/`` or
built once from the pedestal run the DAQ logbook names.

The maps' key carries their lineage (code version and the ``[pedestal]`` section's
hash), so a changed pedestal configuration makes new maps instead of reusing old ones."""

from __future__ import annotations

import io

from prefect import task
from prefect.tasks import exponential_backoff

from cygno.reco.config import RecoConfig
from cygno.reco.pedestal import compute_pedestal
from cygno.storage import keys
from cygno.storage.lineage import Product, is_done, lineage
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
def pedestal_for(run: int, tag: str, config: RecoConfig) -> Pedestal:
    """Find or build the pedestal maps for ``run`` and record the pairing in the catalog."""
    ped_run = resources.logbook().pedestal_for(run)
    if ped_run is None:
        raise NoPedestalRun(
            f"no pedestal run ≤ {run} in the DAQ logbook "
            "(pedestal_run = 1, HV_STATE = 0, ≥ 100 events)"
        )
    store = resources.store()
    product = pedestal_product(tag, ped_run, config)
    if not is_done(store, product, product.lineage):  # the key is the record
        raw = _raw_key_of(store, tag, ped_run)
        with store.open(raw, "rb") as stream:
            maps = compute_pedestal(stream, max_pictures=config.pedestal.max_pictures)
        buffer = io.BytesIO()  # np.savez needs a seekable file
        maps.save(buffer)
        store.put_bytes(product.key, buffer.getvalue())
    resources.catalog().upsert_run(run, tag, pedestal_run=ped_run)
    return Pedestal(run=ped_run, key=product.key)


def pedestal_product(tag: str, ped_run: int, config: RecoConfig) -> Product:
    """The maps of ``ped_run`` this code makes with ``config``'s ``[pedestal]`` section."""
    made_by = lineage("pedestal", pedestal=config.section_hash("pedestal"))
    return Product(keys.pedestal_key(tag, ped_run, made_by), made_by)


def _raw_key_of(store, tag: str, run: int) -> str:
    for suffix in keys.RAW_SUFFIXES[::-1]:
        key = keys.raw_key(tag, run, suffix)
        if store.exists(key):
            return key
    raise FileNotFoundError(f"pedestal run {run} ({tag}) has no raw file in {store.url}/raw/")
