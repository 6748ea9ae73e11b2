"""Lineage end to end: products are reused exactly while what made them is unchanged.

A changed ``[pedestal]`` section makes new pedestal maps and a new reconstruction
version; an unchanged configuration reuses both; changed quality thresholds judge the
same reconstruction again.
"""

from __future__ import annotations

import re

from cygno.flows.process_run import process_run
from cygno.reco import quality as dq
from cygno.reco.config import load_config, reco_version
from cygno.settings import get_settings
from cygno.storage import keys
from cygno.tasks.ingest import ingest
from cygno.tasks.pedestal import pedestal_for, pedestal_product
from cygno.tasks.quality import quality, quality_product
from cygno.tasks.reconstruct import find_reco


def _maps(plat, pedestal_run: int) -> list[str]:
    return sorted(plat.store.list(keys.pedestal_prefix("LNGS", pedestal_run)))


def test_products_are_remade_exactly_when_what_made_them_changes(plat, monkeypatch):
    pedestal_run, run = plat.simulate(runs=1, events=4)
    uri = plat.store.uri(run.key)
    config = load_config(plat.settings.reco_config)
    first = process_run(uri)
    version = first["reco_version"]
    first_maps = pedestal_product("LNGS", pedestal_run.run_number, config).key
    assert _maps(plat, pedestal_run.run_number) == [first_maps]

    # unchanged configuration: pedestal maps and reconstruction are found, not remade
    unchanged = process_run(uri)
    assert unchanged["chunk_seconds"] == []
    assert unchanged["reco_version"] == version
    assert _maps(plat, pedestal_run.run_number) == [first_maps]

    # changed quality thresholds: the same reconstruction is judged again
    raw = ingest(uri)
    reco = find_reco(raw, version, pedestal_for(raw.run, raw.tag, config))
    judged = plat.catalog.quality_report(run.run_number, "LNGS", version)
    assert judged.lineage == quality_product(reco, dq.Thresholds()).lineage
    quality(reco)  # the same thresholds: nothing to do
    assert plat.catalog.quality_report(run.run_number, "LNGS", version) == judged
    strict = dq.Thresholds(min_entries=1, spark_fraction_warning=0.0, spark_fraction_bad=0.0)
    outcome = quality(reco, strict)
    again = plat.catalog.quality_report(run.run_number, "LNGS", version)
    assert again.lineage == quality_product(reco, strict).lineage != judged.lineage
    assert again.updated_at > judged.updated_at and outcome.flag == again.flag

    # changed [pedestal] section: new maps beside the old ones, and a new reco version
    text = (plat.root / "small.toml").read_text()
    changed_text, n = re.subn(r"(?m)^max_pictures = \d+", "max_pictures = 40", text)
    assert n == 1
    changed_path = plat.root / "fewer-pedestal-pictures.toml"
    changed_path.write_text(changed_text)
    monkeypatch.setenv("CYGNO_RECO_CONFIG", str(changed_path))
    get_settings.cache_clear()
    changed = load_config(changed_path)

    second = process_run(uri)

    assert second["reco_version"] == reco_version(changed) != version
    assert len(second["chunk_seconds"]) > 0  # reconstructed again, with the new maps
    new_maps = pedestal_product("LNGS", pedestal_run.run_number, changed).key
    assert new_maps != first_maps
    assert _maps(plat, pedestal_run.run_number) == sorted([first_maps, new_maps])
    old = plat.catalog.reco_output(run.run_number, "LNGS", version)
    new = plat.catalog.reco_output(run.run_number, "LNGS", second["reco_version"])
    assert old.state == new.state == "done" and old.lineage != new.lineage
