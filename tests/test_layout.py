"""The repository's layout and import graph, checked statically, and a real ``pip install .``.

The layers sit at the repository root and install as one ``cygno`` namespace
(``pyproject.toml``: ``packages`` + ``package-dir``). Imports point one way:
flows → tasks → reco, storage; storage and reco never read settings or the environment
and never import Prefect; the services in deployments/ never import tasks, flows or the
developer tooling, and tasks/flows never import the services.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]

#: Which parts of ``cygno`` each part may import (itself always). The application shell's
#: modules (cygno.settings, cygno.resources, cygno.events) count as parts of their own.
ALLOWED: dict[str, set[str]] = {
    "storage": set(),
    "reco": {"storage"},
    "htcondor_runner": set(),
    "tasks": {"reco", "storage", "htcondor_runner", "settings", "resources", "events"},
    "flows": {"tasks", "reco", "storage", "settings", "resources", "events"},
    "deployments": {"reco", "storage", "settings", "resources", "events"},
    "settings": set(),
    "events": set(),
    "resources": {"settings", "storage"},
}
#: Parts that are libraries: no Prefect, no settings, no environment.
LIBRARIES = ("storage", "reco")
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _source_dir(part: str) -> Path:
    """The directory (or module file) that installs as ``cygno.<part>``."""
    mapped = SETUPTOOLS["package-dir"].get(f"cygno.{part}")
    if mapped is not None:
        return REPO / mapped
    return REPO / "cygno" / f"{part}.py"


def _modules(part: str) -> list[tuple[str, Path]]:
    """(dotted module name, file) of every module of ``cygno.<part>``."""
    root = _source_dir(part)
    if root.is_file():
        return [(f"cygno.{part}", root)]
    found = []
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(root).with_suffix("").parts
        if rel[-1] == "__init__":
            rel = rel[:-1]
        found.append((".".join((f"cygno.{part}", *rel)), path))
    return found


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, nested ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name == "cygno":  # `from cygno import settings` imports cygno.settings
                out += [(node.lineno, f"cygno.{alias.name}") for alias in node.names]
                continue
            out.append((node.lineno, name))
            if name == "os":
                out += [(node.lineno, f"os.{a.name}") for a in node.names if a.name in ENVIRONMENT]
    return out


def _part_of(name: str) -> str | None:
    """The part of ``cygno`` an import belongs to (None: not ours; "" the bare root)."""
    if name != "cygno" and not name.startswith("cygno."):
        return None
    return name.split(".")[1] if "." in name else ""


def _violations(part: str) -> list[str]:
    allowed = ALLOWED[part] | {part}
    bad = []
    for module, path in _modules(part):
        where = path.relative_to(REPO)
        for line, name in _imports(module, path):
            target = _part_of(name)
            if target is not None and target not in allowed:
                bad.append(f"{where}:{line} imports {name}")
            if part in LIBRARIES and (name.split(".")[0] == "prefect" or name.startswith("os.")):
                bad.append(f"{where}:{line} imports {name}")
        if part in LIBRARIES:
            bad += _environment_reads(path, where)
    return bad


def _environment_reads(path: Path, where: Path) -> list[str]:
    """``os.environ`` / ``os.getenv`` and friends used as attributes anywhere in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{where}:{node.lineno} reads os.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ENVIRONMENT
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    ]


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_imports_point_one_way(part):
    assert _violations(part) == []


def test_the_checker_sees_a_settings_lookup(tmp_path):
    """The AST check catches what it is for: a library reading settings or the environment."""
    path = tmp_path / "leaky.py"
    path.write_text(
        "import os\n"
        "def url():\n"
        "    from cygno.settings import get_settings\n"
        "    return os.environ.get('X') or os.getenv('Y') or get_settings().catalog_url\n"
    )
    names = [name for _, name in _imports("cygno.storage.leaky", path)]
    assert "cygno.settings" in names and _part_of("cygno.settings") not in ALLOWED["storage"]
    reads = _environment_reads(path, Path("leaky.py"))
    assert sorted(reads) == ["leaky.py:4 reads os.environ", "leaky.py:4 reads os.getenv"]


def test_every_part_of_the_namespace_has_an_import_rule():
    """A new layer (package-dir entry) or shell module must say what it may import
    (the command line and the developer tooling may import anything)."""
    mapped = {name.removeprefix("cygno.") for name in SETUPTOOLS["package-dir"]} - {"cygno"}
    shell = {p.stem for p in (REPO / "cygno").glob("*.py")} - {"__init__"}
    assert mapped | shell <= set(ALLOWED)


def test_packages_list_is_the_tree():
    """``packages`` in pyproject.toml names exactly the package directories on disk."""
    on_disk = set()
    for package, directory in SETUPTOOLS["package-dir"].items():
        root = REPO / directory
        for init in root.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            on_disk.add(".".join((package, *init.parent.relative_to(root).parts)))
    assert sorted(SETUPTOOLS["packages"]) == sorted(on_disk)


@pytest.mark.timeout(300)
def test_pip_install_builds_a_wheel_that_imports_from_anywhere(tmp_path):
    """``pip install .`` (a real wheel, not editable) puts one ``cygno`` namespace in
    site-packages, package data included, and the flows import from ``/``."""
    source = tmp_path / "src"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".*", "__pycache__", "*.egg-info", "build", "data", "tests", "*.pyc"
        ),
    )
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    top = sorted(p.name for p in target.iterdir() if p.name != "bin")
    assert [name for name in top if not name.endswith(".dist-info")] == ["cygno"], top
    probe = (
        "import importlib.resources as r, cygno, cygno.flows.process_run as f\n"
        "print(f.__file__)\n"
        "print(r.files('cygno.reco').joinpath('configs/lngs.toml').is_file())\n"
        "print(r.files('cygno.storage').joinpath('migrations/env.py').is_file())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)  # ahead of the editable install in the test venv
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd="/",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert Path(out[0]).is_relative_to(target / "cygno" / "flows"), out[0]
    assert out[1:] == ["True", "True"]


def test_the_editable_install_imports_from_anywhere():
    """The development install (``pip install -e``) serves any working directory too."""
    probe = "import cygno.flows.process_run as f, cygno.storage as s; print(f.__file__, s.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd="/", check=True, capture_output=True, text=True
    ).stdout.split()
    assert out == [str(REPO / "flows" / "process_run.py"), str(REPO / "storage" / "__init__.py")]
