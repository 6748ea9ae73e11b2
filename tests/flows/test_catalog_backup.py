"""catalog-backup as the schedule runs it, and `cygno catalog restore` from its dump."""

from __future__ import annotations

from typer.testing import CliRunner

from cygno.cli import _register, app
from cygno.flows.catalog_backup import catalog_backup
from cygno.flows.db_mirror import db_mirror
from cygno.storage.catalog.backup import list_dumps
from tests.storage.test_catalog_backup import _tables


def test_backup_flow_then_restore_into_an_empty_database(plat, tmp_path):
    plat.simulate(runs=2, events=2)
    assert db_mirror() == 3
    plat.catalog.upsert_run(2, "LNGS", events=2)
    result = catalog_backup(keep_daily=2, keep_weekly=1)
    (dump,) = list_dumps(plat.store)
    assert result == {"dump": plat.store.uri(dump.key), "deleted": []}
    assert dump.rows["daq_logbook"] == 3 and dump.rows["runs"] == 1

    _register()
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    restored = CliRunner().invoke(app, ["catalog", "restore", "--url", target])
    assert restored.exit_code == 0, restored.output
    assert _tables(target) == _tables(plat.catalog.url)

    refused = CliRunner().invoke(app, ["catalog", "restore", "--url", plat.catalog.url])
    assert refused.exit_code == 1
    assert "is not empty: table" in refused.output
