"""The object store key layout (docs/architecture.md §4), in one place.

Every key the platform writes is built here, and every key that comes from outside
(a bucket notification, a CLI argument, a catalog row) is validated here, so a crafted
``../`` or absolute path can never escape the store root.

```
raw/<tag>/run<NNNNN>.mid[.gz|.lz4|.bz2]   written by the DAQ, read-only for us
quarantine/<tag>/run<NNNNN>[.vN].mid.gz   corrupt inputs (versioned), a .json reason beside
pedestals/<tag>/run<NNNNN>/ped-<lineage>.npz  pedestal maps, one per lineage (lineage.py)
reco/<version>/<tag>/reco_run<NNNNN>.root reconstruction output
quality/<version>/<tag>/run<NNNNN>/       histograms and plots
staging/                                  HTCondor payloads and results
```
"""

from __future__ import annotations

import re

RAW_PREFIX = "raw/"
QUARANTINE_PREFIX = "quarantine/"
PEDESTALS_PREFIX = "pedestals/"
RECO_PREFIX = "reco/"
QUALITY_PREFIX = "quality/"
SUPERSEDED_PREFIX = "superseded/"

#: Compression suffixes the DAQ may give a raw file; ``.mid.gz`` is what LIME writes.
RAW_SUFFIXES = (".mid", ".mid.gz", ".mid.lz4", ".mid.bz2")
DEFAULT_RAW_SUFFIX = ".mid.gz"

#: Site tags: LNGS, LNF, MAN, … (letters first, then letters, digits, ``_`` or ``-``).
TAG_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
#: Reco versions look like ``0.1.0+3f9a1c2e`` (``<package version>+<config hash>``).
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
#: Lineage ids (storage.lineage.digest): short lower-case hex digests.
_LINEAGE = re.compile(r"[0-9a-f]{8,64}")

# ASCII digits only (``\d`` would take "٠٠٠٠٢" as run 2); the run part is checked
# against its one canonical spelling by :func:`_canonical_run`.
_RUN_PART = r"run(?P<run>[0-9]+)"
_SUFFIX_PART = r"(?P<suffix>\.mid(?:\.gz|\.lz4|\.bz2)?)"
_RAW_KEY = re.compile(rf"raw/(?P<tag>[^/]+)/{_RUN_PART}{_SUFFIX_PART}")
_QUARANTINE_KEY = re.compile(
    rf"quarantine/(?P<tag>[^/]+)/{_RUN_PART}(?P<version>\.v[1-9][0-9]*)?{_SUFFIX_PART}"
)


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe relative object key, else raise ValueError.

    Refused: empty keys, absolute paths, URLs, backslashes, control characters, and
    empty, ``.`` or ``..`` parts (``a//b``, ``a/./b``, ``../etc``, trailing ``/``).
    """
    if not isinstance(key, str) or not key:
        raise ValueError("object key is empty")
    if key.startswith("/") or "://" in key or re.match(r"[A-Za-z]:", key):
        raise ValueError(f"object key must be relative, got {key!r}")
    if "\\" in key or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ValueError(f"object key contains a backslash or control character: {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"object key has an empty, '.' or '..' part: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Like :func:`validate_key` for listing prefixes: empty and a trailing ``/`` are fine."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it matches :data:`TAG_PATTERN`, else raise ValueError."""
    if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
        raise ValueError(f"invalid site tag {tag!r} (expected e.g. LNGS, LNF, MAN)")
    return tag


def validate_version(version: str) -> str:
    """Return a reco version if it matches :data:`VERSION_PATTERN`, else raise ValueError."""
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise ValueError(f"invalid reco version {version!r}")
    return version


def _run(run: int) -> str:
    if isinstance(run, bool) or not isinstance(run, int) or run < 0:
        raise ValueError(f"run number must be a non-negative int, got {run!r}")
    return f"run{run:05d}"


def _suffix(suffix: str) -> str:
    if suffix not in RAW_SUFFIXES:
        raise ValueError(f"raw suffix must be one of {RAW_SUFFIXES}, got {suffix!r}")
    return suffix


def raw_key(tag: str, run: int, suffix: str = DEFAULT_RAW_SUFFIX) -> str:
    """``raw/LNGS/run01234.mid.gz``."""
    return f"{RAW_PREFIX}{validate_tag(tag)}/{_run(run)}{_suffix(suffix)}"


def _canonical_run(match: re.Match[str], key: str) -> int:
    """The run number of a key whose run part is spelled the one way :func:`raw_key`
    writes it (five digits at least, no further leading zeros); ValueError for an
    alias such as ``run000002`` or ``run0002``, which must never reach run 2's state."""
    digits = match["run"]
    run = int(digits)
    if digits != _run(run)[3:]:
        raise ValueError(
            f"{key!r} spells run {run} as {digits!r}; the one accepted spelling is "
            f"{_run(run)!r} (an alias is refused so it cannot touch run {run})"
        )
    return run


def parse_raw_key(key: str) -> tuple[str, int]:
    """``raw/<tag>/run<NNNNN>.mid[.gz|.lz4|.bz2]`` → ``(tag, run)``; ValueError otherwise
    (also for a run number spelled any other way than :func:`raw_key` writes it)."""
    match = _RAW_KEY.fullmatch(validate_key(key))
    if not match:
        raise ValueError(
            f"not a raw run key (raw/<tag>/run<NNNNN>.mid[.gz], ASCII digits): {key!r}"
        )
    return validate_tag(match["tag"]), _canonical_run(match, key)


def raw_suffix(key: str) -> str:
    """The compression suffix of a raw or quarantine key (``.mid.gz``, ``.mid``, …)."""
    match = _RAW_KEY.fullmatch(key) or _QUARANTINE_KEY.fullmatch(key)
    if not match:
        raise ValueError(f"not a raw or quarantine key: {key!r}")
    return match["suffix"]


def quarantine_key(
    tag_or_raw_key: str, run: int | None = None, suffix: str | None = None, version: int = 1
) -> str:
    """Where a corrupt raw file goes: ``quarantine/LNGS/run01234.mid.gz``, and for the
    run's later corrupt uploads ``run01234.v2.mid.gz``, … (a quarantined file and its
    reason are never overwritten).

    Call it with the raw key (``quarantine_key("raw/LNGS/run01234.mid.lz4")`` keeps its
    suffix) or with ``(tag, run)`` like the other builders.
    """
    if run is None:
        tag, run = parse_raw_key(tag_or_raw_key)
        suffix = suffix or raw_suffix(tag_or_raw_key)
    else:
        tag = tag_or_raw_key
    suffix = _suffix(suffix or DEFAULT_RAW_SUFFIX)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"quarantine version must be an int >= 1, got {version!r}")
    mark = f".v{version}" if version > 1 else ""
    return f"{QUARANTINE_PREFIX}{validate_tag(tag)}/{_run(run)}{mark}{suffix}"


def quarantine_version(quarantined_key: str) -> int:
    """1 for ``run01234.mid.gz``, 2 for ``run01234.v2.mid.gz``, …"""
    match = _QUARANTINE_KEY.fullmatch(validate_key(quarantined_key))
    if not match:
        raise ValueError(f"not a quarantine key: {quarantined_key!r}")
    return int(match["version"][2:]) if match["version"] else 1


def quarantine_reason_key(quarantined_key: str) -> str:
    """The JSON reason beside a quarantined file: ``quarantine/LNGS/run01234.mid.gz.json``."""
    if not _QUARANTINE_KEY.fullmatch(validate_key(quarantined_key)):
        raise ValueError(f"not a quarantine key: {quarantined_key!r}")
    return quarantined_key + ".json"


def parse_quarantine_key(key: str) -> tuple[str, int]:
    """``quarantine/<tag>/run<NNNNN>.mid[.gz…]`` → ``(tag, run)``; ValueError otherwise."""
    match = _QUARANTINE_KEY.fullmatch(validate_key(key))
    if not match:
        raise ValueError(f"not a quarantine key: {key!r}")
    return validate_tag(match["tag"]), _canonical_run(match, key)


def pedestal_prefix(tag: str, run: int) -> str:
    """``pedestals/LNGS/run01234/``: every pedestal product of one pedestal run."""
    return f"{PEDESTALS_PREFIX}{validate_tag(tag)}/{_run(run)}/"


def pedestal_key(tag: str, run: int, lineage: str) -> str:
    """``pedestals/LNGS/run01234/ped-3f9a1c2e0b.npz``: the maps of pedestal run ``run``
    made with the code and pedestal parameters ``lineage`` stands for."""
    if not _LINEAGE.fullmatch(lineage):
        raise ValueError(f"not a lineage id (hex digest): {lineage!r}")
    return f"{pedestal_prefix(tag, run)}ped-{lineage}.npz"


def reco_key(version: str, tag: str, run: int) -> str:
    """``reco/<version>/LNGS/reco_run01234.root``."""
    return f"{RECO_PREFIX}{validate_version(version)}/{validate_tag(tag)}/reco_{_run(run)}.root"


def quality_prefix(version: str, tag: str, run: int) -> str:
    """``quality/<version>/LNGS/run01234/`` (ends with ``/``; append file names)."""
    return f"{QUALITY_PREFIX}{validate_version(version)}/{validate_tag(tag)}/{_run(run)}/"


def superseded_key(key: str, tag: str, run: int, version: int) -> str:
    """``superseded/LNGS/run01234/v1/<key>``: where ``key`` (a raw file, or one of its
    run's products) is kept once a re-upload with other content made version
    ``version`` of the raw file history (outside ``raw/``, ``reco/`` and ``quality/``)."""
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"raw file version must be a positive integer, got {version!r}")
    return f"{SUPERSEDED_PREFIX}{validate_tag(tag)}/{_run(run)}/v{version}/{validate_key(key)}"
