"""Chunk jobs reach the object store through presigned URLs, never with its keys: on
the moto S3 server, a chunk job built by ``chunk_task_runner`` (the local backend, so
the job has exactly a pool job's environment and sandbox) reconstructs the same clusters
as an in-process call that uses the keys."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from urllib.parse import parse_qs, urlparse

import pytest
from prefect import flow

from cygno.reco.config import load_config
from cygno.reco.pedestal import compute_pedestal
from cygno.tasks import jobs, presign
from cygno.tasks import reconstruct as t
from cygno.tasks.models import Chunk, Pedestal, RawFile
from tests.flows.harness import platform, s3_overrides


@pytest.fixture
def s3_run(prefect_api, s3_server, tmp_path, monkeypatch):
    """A platform on S3 with one simulated run and its pedestal maps in the store."""
    overrides = s3_overrides(s3_server, s3_server.new_bucket())
    with platform(tmp_path / "platform", monkeypatch, **overrides) as plat:
        pedestal_run, run = plat.simulate(runs=1, events=3, pedestal_events=20)
        store = plat.store
        with store.open(pedestal_run.key, "rb") as stream:
            maps = compute_pedestal(stream)
        buffer = io.BytesIO()
        maps.save(buffer)
        store.put_bytes("pedestals/LNGS/ped_test.npz", buffer.getvalue())
        raw = RawFile(
            store.uri(run.key), run.key, run.run_number, "LNGS", store.size(run.key),
            run.checksums.adler32, "", 3, 3,
        )  # fmt: skip
        yield plat, raw, Pedestal(pedestal_run.run_number, "pedestals/LNGS/ped_test.npz")


def test_prepare_chunk_call_gives_urls_that_need_no_keys(s3_run, tmp_path):
    plat, raw, pedestal = s3_run
    config = load_config(plat.settings.reco_config)
    args, kwargs = presign.prepare_chunk_call(
        jobs.reconstruct_chunk, (raw, Chunk(0, 2), pedestal, config), {}
    )
    assert args == () and kwargs["raw"] == raw and kwargs["chunk"] == Chunk(0, 2)
    access = kwargs["access"]
    query = parse_qs(urlparse(access.raw_url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == [str(presign.URL_LIFETIME_SECONDS)]
    signature_v4 = {"Algorithm", "Credential", "Date", "Expires", "SignedHeaders", "Signature"}
    assert set(query) == {f"X-Amz-{name}" for name in signature_v4}, "a signature, no secret"
    assert access.raw_url not in repr(access), "URLs are bearer credentials: never printed"
    # plain HTTP from a process with no credentials anywhere in its environment
    fetch = (
        "import sys, urllib.request as u; sys.stdout.buffer.write(u.urlopen(sys.argv[1]).read())"
    )
    got = subprocess.run(
        [sys.executable, "-c", fetch, access.pedestal_url],
        env={},
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert got.stdout == plat.store.get_bytes(pedestal.key)
    unrelated = (1, 2)
    assert presign.prepare_chunk_call(print, unrelated, {}) == (unrelated, {})


def test_a_chunk_job_without_keys_reconstructs_through_presigned_urls(s3_run):
    plat, raw, pedestal = s3_run
    config = load_config(plat.settings.reco_config)
    runner = t.chunk_task_runner()
    environment = runner.job_environment()
    assert not any("KEY" in name or "SECRET" in name for name in environment)
    assert os.environ["CYGNO_S3_SECRET_ACCESS_KEY"] not in str(environment)

    @flow(task_runner=runner)
    def one_chunk():
        task = t.reconstruct_chunk.with_options(refresh_cache=True, retries=0)
        return task.submit(raw, Chunk(0, 3), pedestal, config).result()

    remote = one_chunk()
    local = jobs.reconstruct_chunk(raw, Chunk(0, 3), pedestal, config)
    assert remote.pictures == local.pictures == 3
    assert remote.clusters == local.clusters and remote.clusters > 0
    assert remote.vetoed == local.vetoed


def test_presigned_urls_are_signed_for_the_configured_region(s3_run, monkeypatch):
    """A SigV4 signature is scoped to a region: a site outside us-east-1 sets CYGNO_S3_REGION."""
    from cygno.settings import get_settings

    plat, _raw, pedestal = s3_run
    monkeypatch.setenv("CYGNO_S3_REGION", "eu-south-1")
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.storage_options()["client_kwargs"] == {"region_name": "eu-south-1"}
    url = presign.object_url(plat.store, pedestal.key, settings)
    (credential,) = parse_qs(urlparse(url).query)["X-Amz-Credential"]
    assert credential.split("/")[2] == "eu-south-1"
    get_settings.cache_clear()
