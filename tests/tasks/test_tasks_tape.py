"""Settings → tape endpoint, and the tape tasks' functions against the WebDAV tape site."""

from __future__ import annotations

import httpx
import pytest

from cygno.reco.simulate.run import simulate_run
from cygno.settings import get_settings
from cygno.storage import keys
from cygno.storage.tape import LocalHsm, WebDavTape
from cygno.tasks import resources
from cygno.tasks.ingest import ingest
from cygno.tasks.tape import archive_to_tape, recall_from_tape
from tests.storage.tape_site import RunningSite, TapeSite, tls_files


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("CYGNO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CYGNO_STORE_URL", (tmp_path / "store").as_uri())
    monkeypatch.setenv("CYGNO_CATALOG_URL", f"sqlite:///{tmp_path / 'catalog.db'}")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.fixture
def site(tmp_path):
    (tmp_path / "site" / "cygno").mkdir(parents=True)
    running = RunningSite(TapeSite(root=tmp_path / "site", tokens={"iam-token"}))
    yield running.site
    running.stop()


def test_the_default_is_the_local_hsm_with_its_records_beside_the_tape(env, tmp_path):
    env.setenv("CYGNO_TAPE_URL", (tmp_path / "tape").as_uri())
    tape = resources.tape()
    assert isinstance(tape, LocalHsm)
    assert tape.state_url == (tmp_path / "tape").as_uri() + ".hsm"


def test_a_davs_url_gives_the_webdav_endpoint_with_token_and_tape_rest(env, site, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("iam-token")
    env.setenv("CYGNO_TAPE_URL", f"{site.dav_url}/cygno")
    env.setenv("CYGNO_TAPE_TOKEN_FILE", str(token_file))
    env.setenv("CYGNO_TAPE_REST_URL", site.rest_url)
    env.setenv("CYGNO_TAPE_STAGE_POLL_SECONDS", "0.01")
    get_settings.cache_clear()
    tape = resources.tape()
    assert isinstance(tape, WebDavTape) and tape.rest is not None

    store = resources.store()
    key = keys.raw_key("LNGS", 7)
    with store.publish(key) as out:
        simulate_run(out, 7, 2, "fe55", shape=(64, 64), write_truth=False)
    raw = ingest.fn(store.uri(key))
    uri = archive_to_tape.fn(raw)
    assert uri == f"{site.dav_url}/cygno/{key}"
    [copy] = resources.catalog().tape_copies(raw_uri=raw.uri)
    assert (copy.state, copy.adler32) == ("ok", raw.adler32)

    site.migrated.add(tape.path(key))
    store.delete(key)
    assert recall_from_tape.fn(key) == store.uri(key)
    assert store.checksum(key).adler32 == raw.adler32
    assert site.methods("STAGE") == ["/api/v1/stage"]


def test_davs_with_the_configured_cas(env, tmp_path):
    """TLS as at CNAF: the server's certificate is checked against CYGNO_TAPE_CA_PATH."""
    ca, cert, key = tls_files(tmp_path)
    (tmp_path / "tls" / "cygno").mkdir(parents=True)
    running = RunningSite(TapeSite(root=tmp_path / "tls", tokens={"iam-token"}), tls=(cert, key))
    try:
        env.setenv("CYGNO_TAPE_URL", f"{running.site.dav_url}/cygno")
        env.setenv("CYGNO_TAPE_TOKEN", "iam-token")
        get_settings.cache_clear()
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            resources.tape().state("raw/LNGS/run00007.mid.gz")  # the system CAs only
        env.setenv("CYGNO_TAPE_CA_PATH", str(ca))
        get_settings.cache_clear()
        tape = resources.tape()
        assert tape.url.startswith("davs://")
        store = resources.store()
        store.put_bytes("raw/LNGS/run00007.mid.gz", b"seven")
        assert tape.archive(store, "raw/LNGS/run00007.mid.gz").size == 5
    finally:
        running.stop()
