"""The object store key layout and the validation of keys from outside."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cygno.storage import keys


def test_builders_follow_the_architecture_layout():
    assert keys.raw_key("LNGS", 1234) == "raw/LNGS/run01234.mid.gz"
    assert keys.raw_key("LNF", 7, ".mid") == "raw/LNF/run00007.mid"
    assert keys.quarantine_key("LNGS", 1234) == "quarantine/LNGS/run01234.mid.gz"
    assert keys.pedestal_key("LNGS", 1200, "3f9a1c2e0b") == (
        "pedestals/LNGS/run01200/ped-3f9a1c2e0b.npz"
    )
    assert keys.pedestal_prefix("LNGS", 1200) == "pedestals/LNGS/run01200/"
    with pytest.raises(ValueError):
        keys.pedestal_key("LNGS", 1200, "../x")
    assert keys.reco_key("0.1.0+3f9a1c2e", "LNGS", 1234) == (
        "reco/0.1.0+3f9a1c2e/LNGS/reco_run01234.root"
    )
    assert keys.quality_prefix("0.1.0+3f9a1c2e", "MAN", 5) == "quality/0.1.0+3f9a1c2e/MAN/run00005/"


def test_run_numbers_beyond_five_digits_are_not_truncated():
    key = keys.raw_key("LNGS", 123456)
    assert key == "raw/LNGS/run123456.mid.gz"
    assert keys.parse_raw_key(key) == ("LNGS", 123456)


@pytest.mark.parametrize("suffix", keys.RAW_SUFFIXES)
def test_parse_raw_key_accepts_every_compression(suffix):
    assert keys.parse_raw_key(f"raw/LNGS/run01234{suffix}") == ("LNGS", 1234)
    assert keys.raw_suffix(f"raw/LNGS/run01234{suffix}") == suffix


def test_quarantine_key_from_raw_key_keeps_the_suffix_and_has_a_reason_beside():
    q = keys.quarantine_key("raw/LNGS/run01234.mid.lz4")
    assert q == "quarantine/LNGS/run01234.mid.lz4"
    assert keys.quarantine_reason_key(q) == "quarantine/LNGS/run01234.mid.lz4.json"
    assert keys.parse_quarantine_key(q) == ("LNGS", 1234)
    with pytest.raises(ValueError):
        keys.quarantine_reason_key("raw/LNGS/run01234.mid.gz")


@pytest.mark.parametrize(
    "key",
    [
        "raw/LNGS/run1234.mid.gz",  # fewer than five digits
        "raw/LNGS/run01234.mid.zip",
        "raw/LNGS/run01234.root",
        "raw/LNGS/sub/run01234.mid.gz",
        "raw/run01234.mid.gz",
        "reco/LNGS/run01234.mid.gz",
        "raw/../run01234.mid.gz",
        "raw/LN GS/run01234.mid.gz",
        "/raw/LNGS/run01234.mid.gz",
        "s3://bucket/raw/LNGS/run01234.mid.gz",
        "raw/LNGS/run01234.mid.gz/",
        "",
    ],
)
def test_parse_raw_key_refuses_everything_else(key):
    with pytest.raises(ValueError):
        keys.parse_raw_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../secret",
        "raw/../../etc",
        "raw/./x",
        "raw//x",
        "raw/x/",
        "file:///etc/passwd",
        "C:/windows",
        "raw\\x",
        "raw/x\x00y",
        "raw/x\ny",
    ],
)
def test_validate_key_refuses_unsafe_keys(key):
    with pytest.raises(ValueError):
        keys.validate_key(key)


def test_validate_prefix_allows_empty_and_trailing_slash_only():
    assert keys.validate_prefix("") == ""
    assert keys.validate_prefix("raw/LNGS/") == "raw/LNGS/"
    assert keys.validate_prefix("raw/LNGS/run012") == "raw/LNGS/run012"
    for bad in ("/raw", "raw//", "../", "raw/../x/"):
        with pytest.raises(ValueError):
            keys.validate_prefix(bad)


@pytest.mark.parametrize(
    "builder",
    [
        lambda: keys.raw_key("../x", 1),
        lambda: keys.raw_key("", 1),
        lambda: keys.raw_key("LNGS", -1),
        lambda: keys.raw_key("LNGS", True),
        lambda: keys.raw_key("LNGS", 1, ".gz"),
        lambda: keys.reco_key("../v", "LNGS", 1),
        lambda: keys.reco_key("1.0/x", "LNGS", 1),
    ],
)
def test_builders_refuse_bad_parts(builder):
    with pytest.raises(ValueError):
        builder()


@given(
    tag=st.from_regex(keys.TAG_PATTERN, fullmatch=True),
    run=st.integers(min_value=0, max_value=10**7),
    suffix=st.sampled_from(keys.RAW_SUFFIXES),
)
def test_raw_key_round_trip(tag, run, suffix):
    key = keys.raw_key(tag, run, suffix)
    assert keys.validate_key(key) == key
    assert keys.parse_raw_key(key) == (tag, run)
    assert keys.parse_quarantine_key(keys.quarantine_key(key)) == (tag, run)


@given(st.text(max_size=40))
def test_validated_keys_never_escape_the_root(text):
    try:
        keys.validate_key(text)
    except ValueError:
        return
    parts = text.split("/")
    assert ".." not in parts and "" not in parts
    assert not text.startswith("/")


@pytest.mark.parametrize(
    "alias",
    [
        "raw/LNGS/run000002.mid.gz",
        "raw/LNGS/run0000002.mid.gz",
        "raw/LNGS/run0123456.mid.gz",
        "raw/LNGS/run\u0660\u0660\u0660\u0660\u0662.mid.gz",  # Arabic-Indic digits
        "raw/LNGS/run\uff10\uff10\uff10\uff10\uff12.mid.gz",  # full-width digits
    ],
)
def test_aliases_of_a_run_number_are_refused_with_the_canonical_spelling(alias):
    with pytest.raises(ValueError) as caught:
        keys.parse_raw_key(alias)
    assert repr(alias) in str(caught.value)
    if alias.isascii():
        assert "the one accepted spelling is" in str(caught.value)


@given(tag=st.from_regex(keys.TAG_PATTERN, fullmatch=True), run=st.integers(0, 10**7))
def test_each_run_has_exactly_one_raw_key_per_suffix(tag, run):
    canonical = keys.raw_key(tag, run)
    digits = canonical.rsplit("run", 1)[1].split(".")[0]
    assert keys.parse_raw_key(canonical) == (tag, run)
    with pytest.raises(ValueError):
        keys.parse_raw_key(canonical.replace(f"run{digits}", f"run0{digits}"))


def test_quarantine_versions_never_collide():
    first = keys.quarantine_key("raw/LNGS/run01234.mid.gz")
    second = keys.quarantine_key("raw/LNGS/run01234.mid.gz", version=2)
    assert (first, second) == (
        "quarantine/LNGS/run01234.mid.gz",
        "quarantine/LNGS/run01234.v2.mid.gz",
    )
    assert [keys.quarantine_version(k) for k in (first, second)] == [1, 2]
    assert keys.parse_quarantine_key(second) == ("LNGS", 1234)
    assert keys.quarantine_reason_key(second) == second + ".json"
    with pytest.raises(ValueError):
        keys.quarantine_key("raw/LNGS/run01234.mid.gz", version=0)
