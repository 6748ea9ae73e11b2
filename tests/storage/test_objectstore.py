"""ObjectStore on file:// and on a real S3 endpoint (moto's server) through s3fs."""

from __future__ import annotations

import hashlib
import os
import zlib

import boto3
import pytest

from cygno.resources import store_for
from cygno.settings import Settings
from cygno.storage.objectstore import ObjectStore

MiB = 1 << 20


def _sums(data: bytes) -> tuple[str, str, int]:
    return f"{zlib.adler32(data):08x}", hashlib.md5(data).hexdigest(), len(data)


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path) -> ObjectStore:
    if request.param == "file":
        return ObjectStore((tmp_path / "store").as_uri())
    server = request.getfixturevalue("s3_server")
    return ObjectStore(f"s3://{server.new_bucket()}", server.storage_options())


def test_put_get_round_trip_with_checksums_computed_while_streaming(store, tmp_path):
    data = os.urandom(3 * MiB + 17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    key = "raw/LNGS/run01234.mid.gz"
    put = store.put_file(src, key)
    assert (put.adler32, put.md5, put.size) == _sums(data)
    assert store.exists(key)
    assert store.size(key) == len(data)
    got = store.get_file(key, tmp_path / "out" / "copy.bin")
    assert got == put
    assert (tmp_path / "out" / "copy.bin").read_bytes() == data
    assert store.checksum(key) == put
    with store.open(key) as f:
        assert f.read(10) == data[:10]
    versioned = "reco/0.1.0+3f9a1c2e/LNGS/reco_run01234.root"  # "+" survives S3 URL encoding
    store.put_bytes(versioned, b"root")
    assert store.list("reco/0.1.0+3f9a1c2e/") == [versioned]
    assert store.get_bytes(store.key_of(store.uri(versioned))) == b"root"


def test_adler32_is_zero_padded(store):
    # adler32 of b"" is 1 → "00000001": a dropped leading zero breaks tape comparisons
    assert store.put_bytes("staging/empty", b"").adler32 == "00000001"
    assert store.size("staging/empty") == 0


def test_uri_and_key_of_are_inverse_and_refuse_foreign_urls(store):
    key = "reco/0.1.0+abc/LNGS/reco_run00001.root"
    uri = store.uri(key)
    assert uri.startswith(("file:///", "s3://"))
    assert uri.endswith(key)
    assert store.key_of(uri) == key
    assert store.key_of(key) == key
    with pytest.raises(ValueError):
        store.key_of("s3://some-other-bucket/raw/LNGS/run00001.mid.gz")
    with pytest.raises(ValueError):
        store.key_of(store.uri("raw") + "/../../etc/passwd")


def test_list_is_a_string_prefix_listing_and_sizes_match(store):
    for run in (1, 2, 12):
        store.put_bytes(f"raw/LNGS/run{run:05d}.mid.gz", b"x" * run)
    store.put_bytes("raw/LNF/run00001.mid.gz", b"y")
    store.put_bytes("quality/v1/LNGS/run00001/plot.png", b"png")
    assert store.list("raw/LNGS/") == [
        "raw/LNGS/run00001.mid.gz",
        "raw/LNGS/run00002.mid.gz",
        "raw/LNGS/run00012.mid.gz",
    ]
    assert store.list("raw/LNGS/run0001") == ["raw/LNGS/run00012.mid.gz"]
    assert store.list("raw/") == sorted([*store.list("raw/LNGS/"), "raw/LNF/run00001.mid.gz"])
    assert len(store.list()) == 5
    assert store.list("reco/") == []
    assert store.sizes("raw/LNGS/")["raw/LNGS/run00012.mid.gz"] == 12
    with pytest.raises(ValueError):
        store.list("../")


def test_publish_is_invisible_until_the_with_block_ends(store):
    key = "pedestals/LNGS/ped_run00010.npz"
    with store.publish(key) as out:
        out.write(b"a" * 1000)
        assert not store.exists(key)
        assert store.list("pedestals/") == []
    assert store.exists(key)
    assert out.checksums.size == 1000


def test_failed_publish_leaves_the_old_object_and_no_debris(store):
    key = "reco/v1/LNGS/reco_run00001.root"
    store.put_bytes(key, b"old content")
    with pytest.raises(RuntimeError), store.publish(key) as out:
        out.write(b"new half")
        raise RuntimeError("writer died")
    assert store.get_bytes(key) == b"old content"
    assert store.list() == [key]
    if store.local_path(key) is not None:
        assert os.listdir(store.local_path(key).parent) == ["reco_run00001.root"]


def test_a_publish_dropped_without_commit_leaves_nothing(store):
    import gc

    import numpy as np

    out = store.publish("staging/dropped.bin")
    out.write(b"x" * 100)
    del out
    gc.collect()
    assert store.list() == []
    with store.publish("pedestals/LNGS/ped_run00001.npz") as f:  # zipfile on a stream
        np.savez(f, mean=np.arange(4.0))
    with store.open("pedestals/LNGS/ped_run00001.npz") as f:
        assert np.load(f)["mean"].tolist() == [0.0, 1.0, 2.0, 3.0]
    if store.local_path("staging/x") is not None:
        assert not any(store.local_path("staging/x").parent.iterdir())


def test_open_wb_is_a_publish(store):
    f = store.open("staging/job/payload.pkl", "wb")
    f.write(b"payload")
    assert not store.exists("staging/job/payload.pkl")
    f.close()
    assert store.get_bytes("staging/job/payload.pkl") == b"payload"
    with pytest.raises(ValueError):
        store.open("staging/job/payload.pkl", "ab")


def test_move_and_delete(store):
    store.put_bytes("raw/LNGS/run00005.mid.gz", b"corrupt")
    store.move("raw/LNGS/run00005.mid.gz", "quarantine/LNGS/run00005.mid.gz")
    assert not store.exists("raw/LNGS/run00005.mid.gz")
    assert store.get_bytes("quarantine/LNGS/run00005.mid.gz") == b"corrupt"
    store.delete("quarantine/LNGS/run00005.mid.gz")
    store.delete("quarantine/LNGS/run00005.mid.gz")  # idempotent
    assert not store.exists("quarantine/LNGS/run00005.mid.gz")
    assert store.list() == []


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "raw//x", "raw/./x"])
def test_every_operation_refuses_unsafe_keys(store, key):
    for call in (store.exists, store.uri, store.publish, store.get_bytes, store.delete):
        with pytest.raises(ValueError):
            call(key)


def test_store_for_settings_uses_endpoint_and_secret_credentials(s3_server, monkeypatch):
    bucket = s3_server.new_bucket()
    settings = Settings(
        store_url=f"s3://{bucket}",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    store = store_for(settings)
    store.put_bytes("raw/LNGS/run00001.mid.gz", b"abc")
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    body = client.get_object(Bucket=bucket, Key="raw/LNGS/run00001.mid.gz")["Body"].read()
    assert body == b"abc"
    assert "testing" not in repr(store)


def test_s3_multipart_publish_is_invisible_until_complete_and_aborted_on_error(s3_server):
    bucket = s3_server.new_bucket()
    options = {**s3_server.storage_options(), "default_block_size": 5 * MiB}
    store = ObjectStore(f"s3://{bucket}", options)
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    data = os.urandom(11 * MiB)
    key = "raw/LNGS/run00042.mid.gz"
    with store.publish(key) as out:
        for i in range(0, len(data), MiB):
            out.write(data[i : i + MiB])
        # parts are already on the server, but no object exists yet
        assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")
        assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    assert (out.checksums.adler32, out.checksums.md5, out.checksums.size) == _sums(data)
    assert store.checksum(key) == out.checksums

    with pytest.raises(OSError), store.publish("raw/LNGS/run00043.mid.gz") as out:
        out.write(data)
        raise OSError("connection lost")
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert store.list("raw/") == [key]
