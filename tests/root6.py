"""ROOT 6 checks run in a process of their own.

ROOT's JIT and numba's LLVM do not share a process: a fit segfaults, and an interpreter
that loaded both can spin forever in its C exit handlers after the last test passed. So
the suite never imports ROOT itself; a check sends a short script to a fresh interpreter
and asserts on the JSON it prints.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]

requires_root = pytest.mark.skipif(
    importlib.util.find_spec("ROOT") is None,
    reason="ROOT 6 (the `root` wheel) is not installed",
)

_PRELUDE = "import json, sys\nimport ROOT\nROOT.gROOT.SetBatch(True)\n"


def run_root(script: str, *args: object) -> object:
    """Run ``script`` with ``ROOT`` imported and ``args`` in ``sys.argv[1:]``; the last
    line it prints is JSON, returned decoded."""
    proc = subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(script), *map(str, args)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


#: What an analysis first looks at in a reconstructed file.
EVENTS_SUMMARY = """
f = ROOT.TFile.Open(sys.argv[1])
events = f.Get("Events")
print(json.dumps({
    "class": events.ClassName(),
    "entries": events.GetEntries(),
    "drawn": events.Draw("sc_integral", "", "goff"),
    "params": f.Get("Reco_params").GetEntries(),
    "params_json": str(f.Get("Reco_params_json").GetString()),
}))
"""
