"""`cygno warmup`: compile every numba kernel into the on-disk cache (``make venv`` runs it)."""

from __future__ import annotations

import time

from rich.console import Console

from cygno.cli import app

console = Console(stderr=True)


@app.command("warmup")
def warmup_command() -> None:
    """Compile (or check) every reconstruction kernel, so no run compiles any."""
    from numba.core.config import CACHE_DIR

    from cygno.reco.kernels import compile_all

    start = time.perf_counter()
    signatures = compile_all()
    compiled = sum(len(types) for types in signatures.values())
    where = CACHE_DIR or "__pycache__ beside the sources"
    console.print(
        f"numba kernels ready: {len(signatures)} kernels, {compiled} compiled entry points, "
        f"in {time.perf_counter() - start:.1f} s (cache: {where})"
    )
