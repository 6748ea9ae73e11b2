"""reprocess-runs on the moto S3 server: recall from tape, a new version beside the old."""

from __future__ import annotations

import json
import re

import pytest

from cygno.flows.process_run import process_run
from cygno.flows.reprocess import reprocess
from cygno.reco.config import load_config, reco_version
from cygno.reco.quality import trend_prefix
from cygno.storage import keys
from tests.flows.harness import platform, s3_overrides


@pytest.fixture
def s3_plat(prefect_api, s3_server, tmp_path, monkeypatch):
    with platform(
        tmp_path / "platform", monkeypatch, **s3_overrides(s3_server, s3_server.new_bucket())
    ) as plat:
        yield plat


def test_reprocess_recalls_from_tape_and_adds_a_version(s3_plat, tmp_path):
    plat = s3_plat
    _, *runs = plat.simulate(runs=3, events=3)
    for run in runs:
        process_run(plat.store.uri(run.key))
    old = reco_version(load_config(plat.settings.reco_config))
    before = {k: a for k, a in plat.listing().items() if old in k}
    assert sum(k.startswith("reco/") for k in before) == 3
    plat.tape.migrate()  # HSM: the copies are on tape only, a recall must stage them
    plat.store.delete(runs[1].key)
    variant = tmp_path / "variant.toml"
    text = (tmp_path / "platform" / "small.toml").read_text()
    variant.write_text(re.sub(r"(?m)^nsigma = .*", "nsigma = 1.2", text))
    new = reco_version(load_config(variant))
    assert new != old
    numbers = [r.run_number for r in runs]

    state = reprocess(
        numbers[0], numbers[-1], "LNGS", reco_config=str(variant), max_parallel_runs=2,
        return_state=True,
    )  # fmt: skip

    assert state.is_completed(), state.message
    assert plat.store.exists(runs[1].key)  # recalled from tape
    assert plat.store.checksum(runs[1].key).adler32 == runs[1].checksums.adler32
    for number in numbers:
        assert plat.catalog.reco_output(number, "LNGS", new).state == "done"
        assert plat.store.exists(keys.reco_key(new, "LNGS", number))
        assert plat.catalog.reco_output(number, "LNGS", old).state == "done"
    trends = json.loads(plat.store.get_bytes(f"{trend_prefix(new, 'LNGS')}/summaries.json"))
    assert [row["run"] for row in trends] == numbers  # drawn after the last run
    after = plat.listing()
    assert {k: after[k] for k in before} == before  # the first version untouched
    # nothing lacks the new version any more: a second pass selects no run
    again = reprocess(numbers[0], numbers[-1], "LNGS", reco_config=str(variant), return_state=True)
    assert again.is_completed() and again.message.startswith("0 runs")


def test_a_run_lost_everywhere_fails_alone(plat, tmp_path):
    _, gone, kept = plat.simulate(runs=2, events=2)
    for run in (gone, kept):
        process_run(plat.store.uri(run.key))
    plat.store.delete(gone.key)
    plat.tape.delete(gone.key)
    variant = tmp_path / "variant.toml"
    text = (tmp_path / "platform" / "small.toml").read_text()
    variant.write_text(re.sub(r"(?m)^nsigma = .*", "nsigma = 1.3", text))
    new = reco_version(load_config(variant))

    state = reprocess(reco_config=str(variant), return_state=True)  # every run lacking it

    assert state.is_failed() and f"failed: [{gone.run_number}]" in state.message
    assert plat.catalog.reco_output(kept.run_number, "LNGS", new).state == "done"
    assert plat.catalog.reco_output(gone.run_number, "LNGS", new) is None
    (failure,) = plat.catalog.run(gone.run_number, "LNGS").failures
    assert failure.step == "reprocess" and failure.count == 1
