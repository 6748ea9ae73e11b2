"""Common mistakes at the `cygno` command line, as a new user makes them: each ends with
one clear line on stderr and a non-zero exit, and writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cygno.storage.catalog import Catalog

CYGNO = str(Path(sys.executable).parent / "cygno")


def _cygno(*args: str, cwd: Path, data: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYGNO_")}
    env["CYGNO_DATA_DIR"] = str(data)
    return subprocess.run(
        [CYGNO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A 64×64 pedestal run and data run, a 32×32 data run, the pedestal's maps, a text
    file and a truncated run: what the mistakes below are made with."""
    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    for args in (
        ["--runs", "1", "--events", "3", "--shape", "64"],
        ["--runs", "1", "--events", "2", "--shape", "32", "--no-pedestal", "--first-run", "9"],
    ):
        done = _cygno("simulate", *args, cwd=root, data=data)
        assert done.returncode == 0, done.stderr
    Catalog(f"sqlite:///{data / 'catalog.db'}")  # an empty catalog, for `catalog reset`
    raw = data / "cygno-data" / "raw" / "LNGS"
    maps = root / "ped.npz"
    done = _cygno("pedestal", str(raw / "run00001.mid.gz"), "-o", str(maps), cwd=root, data=data)
    assert done.returncode == 0, done.stderr
    text = root / "notes.txt"
    text.write_text("hello, this is not a run\n")
    truncated = root / "truncated.mid.gz"
    truncated.write_bytes((raw / "run00002.mid.gz").read_bytes()[:3000])
    return {
        "pedestal_run": raw / "run00001.mid.gz",
        "run": raw / "run00002.mid.gz",
        "small_run": raw / "run00009.mid.gz",
        "maps": maps,
        "text": text,
        "truncated": truncated,
        "data": data,
    }


MISTAKES = {
    "reco of a text file": (["reco", "{text}", "--pedestal", "{maps}", "-o", "out.root"],
                            "not a MIDAS file"),
    "reco of a truncated file": (["reco", "{truncated}", "--pedestal", "{maps}", "-o", "out.root"],
                                 "truncated"),
    "pedestal of a text file": (["pedestal", "{text}", "-o", "out.npz"], "not a MIDAS file"),
    "pedestal of a truncated file": (["pedestal", "{truncated}", "-o", "out.npz"], "truncated"),
    "an unknown configuration": (
        ["reco", "{run}", "--pedestal", "{maps}", "--config", "lime", "-o", "out.root"],
        "no reco configuration 'lime'"),
    "a pedestal of another shape": (
        ["reco", "{small_run}", "--pedestal", "{maps}", "-o", "out.root"],
        "pedestal maps are 64×64, but"),
    "pictures past the end": (
        ["reco", "{run}", "--pedestal", "{maps}", "--events", "100:120", "-o", "out.root"],
        "selects none of its pictures"),
    "inspect of a directory": (["inspect", "{data}"], "Is a directory"),
    "inspect of a text file": (["inspect", "{text}"], "not a MIDAS file"),
    "reset of an unknown run": (["catalog", "reset", "99999"], "not in the catalog"),
}  # fmt: skip


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_is_one_line_and_writes_nothing(mistake, files, tmp_path):
    args, said = MISTAKES[mistake]
    argv = [arg.format(**files) for arg in args]
    done = _cygno(*argv, cwd=tmp_path, data=files["data"])
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("cygno: ") and said in lines[-1], done.stderr
    assert "Traceback" not in done.stderr and len(lines[-1]) < 300
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def test_the_catalog_from_another_directory_is_refused_not_created(tmp_path):
    done = _cygno("catalog", cwd=tmp_path, data=tmp_path / "elsewhere")
    assert done.returncode == 1
    assert done.stderr.startswith("cygno: no catalog at ") and done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_pedestal_bar_ends_at_the_pictures_it_used(files, tmp_path):
    done = _cygno(
        "pedestal", str(files["pedestal_run"]), "-o", str(tmp_path / "p.npz"),
        cwd=tmp_path, data=files["data"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "100/100" in done.stderr and "/200" not in done.stderr
