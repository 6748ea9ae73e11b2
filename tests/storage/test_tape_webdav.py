"""The StoRM-style tape endpoint against real servers started here: wsgidav (WebDAV on
cheroot) for the data path, a WLCG Tape REST API server (Starlette/uvicorn) for
locality and recalls; both check a bearer token."""

from __future__ import annotations

import base64
import json
import os
import time
import zlib

import pytest

from cygno.storage.objectstore import ObjectStore
from cygno.storage.tape import (
    BearerToken,
    TapeChecksumError,
    TapeConflictError,
    TapeHttpError,
    TapeOfflineError,
    TapeStageError,
    WebDavTape,
)
from cygno.storage.tape.http import TokenSession
from cygno.storage.tape.token import jwt_expiry
from tests.storage.tape_site import RunningSite, TapeSite

KEY = "raw/LNGS/run01234.mid.gz"


def _adler(data: bytes) -> str:
    return f"{zlib.adler32(data):08x}"


def _jwt(subject: str, expires_in: float) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"sub": subject, "exp": int(time.time() + expires_in)}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture
def site(tmp_path):
    (tmp_path / "site" / "cygno" / "tape").mkdir(parents=True)
    running = RunningSite(TapeSite(root=tmp_path / "site"))
    yield running.site
    running.stop()


def _tape(site: TapeSite, token: BearerToken | None = None, rest: bool = True, **kw) -> WebDavTape:
    return WebDavTape(
        f"{site.dav_url}/cygno/tape",
        token or BearerToken(value="good-token"),
        rest_url=site.rest_url if rest else None,
        poll_seconds=0.01,
        **kw,
    )


@pytest.fixture
def store(tmp_path) -> ObjectStore:
    return ObjectStore((tmp_path / "store").as_uri())


@pytest.fixture
def data(store) -> bytes:
    payload = os.urandom(300_000)
    store.put_bytes(KEY, payload)
    return payload


def test_archive_puts_moves_and_asks_the_server_for_adler32(site, store, data):
    tape = _tape(site)
    copy = tape.archive(store, KEY)
    assert copy.adler32 == _adler(data) and copy.size == len(data)
    assert copy.uri == f"{site.dav_url}/cygno/tape/{KEY}"
    assert tape.key_of(copy.uri) == KEY
    assert site.file(tape.path(KEY)).read_bytes() == data
    assert site.methods("GET") == []  # the server's Digest proved the copy, no read-back
    [put] = site.methods("PUT")
    assert ".part-" in put and site.methods("MOVE") == [put]
    assert sorted(p.name for p in site.file(tape.path(KEY)).parent.iterdir()) == [
        "run01234.mid.gz"
    ]  # no temporary left beside it
    assert tape.checksum(KEY) == copy.adler32
    assert tape.verify(KEY, copy.adler32) and not tape.verify(KEY, "00000001")
    assert tape.state(KEY) == "disk"
    assert site.methods("GET") == []


def test_without_a_server_digest_the_bytes_are_read_back(site, store, data):
    site.give_digest = False
    tape = _tape(site)
    copy = tape.archive(store, KEY)
    assert copy.adler32 == _adler(data)
    assert len(site.methods("GET")) == 1  # the temporary, read back before the MOVE
    assert tape.checksum(KEY) is None  # nothing the server can tell
    assert tape.verify(KEY, copy.adler32)
    target = site.file(tape.path(KEY))
    corrupted = bytearray(target.read_bytes())
    corrupted[1000] ^= 0xFF
    target.write_bytes(bytes(corrupted))
    assert not tape.verify(KEY, copy.adler32)


def test_archive_is_idempotent_and_never_overwrites_a_different_file(site, store, data):
    tape = _tape(site)
    first = tape.archive(store, KEY)
    puts = len(site.methods("PUT"))
    assert tape.archive(store, KEY, expected_adler32=first.adler32) == first
    assert len(site.methods("PUT")) == puts  # known and matching: not sent again
    assert tape.archive(store, KEY) == first  # same bytes again: fine
    store.put_bytes(KEY, b"a different file under the same name")
    with pytest.raises(TapeConflictError, match="refusing to overwrite"):
        tape.archive(store, KEY)
    with pytest.raises(TapeChecksumError, match="catalog expects"):
        tape.archive(store, KEY, expected_adler32="0badf00d")
    assert site.file(tape.path(KEY)).read_bytes() == data  # untouched
    assert [e.key for e in tape.list()] == [KEY]  # and no temporary debris


def test_recall_goes_through_a_tape_rest_stage_request(site, store, data):
    tape = _tape(site)
    copy = tape.archive(store, KEY)
    site.migrated.add(tape.path(KEY))  # the site's HSM moved it to tape
    assert tape.state(KEY) == "migrated"
    with pytest.raises(TapeOfflineError):
        tape.open(KEY)
    assert tape.verify(KEY, copy.adler32)  # the server's checksum: no recall needed
    assert site.stage_requests == {} and site.methods("STAGE") == []

    store.delete(KEY)
    sums = tape.recall(KEY, store)
    assert store.get_bytes(KEY) == data and sums.adler32 == copy.adler32
    assert len(site.methods("STAGE")) == 1
    assert site.stage_requests == {}  # polled to completion, then deleted
    assert tape.state(KEY) == "disk"
    tape.recall(KEY, store, dest_key="staging/again.mid.gz")  # on disk: no new request
    assert len(site.methods("STAGE")) == 1


def test_a_failed_or_endless_recall_is_an_error_naming_the_file(site, store, data):
    tape = _tape(site)
    tape.archive(store, KEY)
    path = tape.path(KEY)
    site.migrated.add(path)
    site.failing.add(path)
    with pytest.raises(TapeStageError, match=f"{path} FAILED tape read error"):
        tape.stage(KEY)
    site.failing.clear()
    site.polls_to_stage = 10**6
    slow = _tape(site, stage_timeout_seconds=0.2)
    with pytest.raises(TapeStageError, match="not done after"):
        slow.stage(KEY)


def test_missing_files(site, store):
    tape = _tape(site)
    missing = "raw/LNGS/run09999.mid.gz"
    assert tape.state(missing) == "missing"
    assert tape.checksum(missing) is None
    assert not tape.verify(missing, "00000001")
    with pytest.raises(FileNotFoundError):
        tape.stage(missing)
    with pytest.raises(FileNotFoundError):
        tape.open(missing)
    tape.delete(missing)  # fine


def test_list_walks_the_namespace_with_locality_and_checksums(site, store, data):
    tape = _tape(site)
    store.put_bytes("raw/LNGS/run01235.mid.gz", b"second")
    store.put_bytes("raw/LNF/run00001.mid.gz", b"third")
    for key in store.list("raw/"):
        tape.archive(store, key)
    site.migrated.add(tape.path(KEY))
    entries = {e.key: e for e in tape.list()}
    assert sorted(entries) == sorted(store.list("raw/"))
    assert entries[KEY].state == "migrated"
    assert entries[KEY].size == len(data) and entries[KEY].adler32 == _adler(data)
    assert entries["raw/LNF/run00001.mid.gz"].state == "disk"
    assert entries[KEY].archived_at is not None
    assert [e.key for e in tape.list("raw/LNF/")] == ["raw/LNF/run00001.mid.gz"]
    assert [e.state for e in _tape(site, rest=False).list("raw/LNGS/")] == ["disk", "disk"]
    tape.delete(KEY)
    assert tape.state(KEY) == "missing"


def test_plain_webdav_without_tape_rest(site, store, data):
    tape = _tape(site, rest=False)
    copy = tape.archive(store, KEY)
    assert tape.state(KEY) == "disk"
    store.delete(KEY)
    assert tape.recall(KEY, store).adler32 == copy.adler32
    assert site.methods("ARCHIVEINFO") == []


def test_the_token_file_is_read_again_after_a_401(site, store, data, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("good-token\n")
    tape = _tape(site, BearerToken(path=token_file))
    tape.archive(store, KEY)
    site.tokens = {"rotated-token"}  # IAM issued a new token; the agent wrote it
    token_file.write_text("rotated-token\n")
    assert tape.state(KEY) == "disk"  # 401, file read again, retried
    site.tokens = {"yet-another"}  # and a server that refuses what the file holds:
    with pytest.raises(TapeHttpError, match="401") as refused:
        tape.checksum(KEY)
    assert "rotated-token" not in str(refused.value)  # the token is never in an error


def test_a_streamed_upload_is_sent_again_with_the_renewed_token(site, tmp_path):
    tokens = iter(["stale-token", "good-token"])
    session = TokenSession(BearerToken(refresh=lambda: next(tokens)))
    url = f"{site.dav_url.replace('dav://', 'http://')}/cygno/tape/direct.bin"
    response = session.send(
        "PUT", url, headers={"Content-Length": "12"}, content=lambda: iter([b"first ", b"second"])
    )
    assert response.status_code == 201
    assert site.file("/cygno/tape/direct.bin").read_bytes() == b"first second"
    assert site.methods("PUT") == ["/cygno/tape/direct.bin"] * 2  # 401, then the retry


def test_a_token_about_to_expire_is_renewed_before_use(tmp_path):
    token_file = tmp_path / "token"
    first = _jwt("cygno-daq", expires_in=3600)
    token_file.write_text(first)
    token = BearerToken(path=token_file, margin=60)
    assert token.get() == first
    assert jwt_expiry(first) == pytest.approx(time.time() + 3600, abs=5)
    token_file.write_text(_jwt("cygno-daq", expires_in=30))
    assert token.get() == first  # still valid for an hour: the file is not re-read
    expiring = BearerToken(path=token_file, margin=60)
    expiring.get()
    renewed = _jwt("cygno-daq", expires_in=3600)
    token_file.write_text(renewed)
    assert expiring.get() == renewed  # within the margin: read again before it is sent
    assert "cygno-daq" not in repr(expiring) and renewed not in repr(expiring)
    token_file.write_text("")
    with pytest.raises(PermissionError, match="empty bearer token"):
        BearerToken(path=token_file).get()
    with pytest.raises(ValueError, match="exactly one"):
        BearerToken(value="x", path=token_file)


def test_rename_is_a_move_in_the_namespace_never_over_a_file(site, store, data):
    tape = _tape(site)
    copy = tape.archive(store, KEY)
    kept = "superseded/LNGS/run01234/v1/" + KEY
    tape.rename(KEY, kept)
    assert tape.state(KEY) == "missing" and tape.verify(kept, copy.adler32)
    tape.archive(store, KEY)
    with pytest.raises(TapeConflictError):
        tape.rename(KEY, kept)
    with pytest.raises(FileNotFoundError):
        tape.rename("raw/LNGS/run09999.mid.gz", "elsewhere/x")
