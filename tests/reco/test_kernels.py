"""After `compile_all` (what `make venv` runs as `cygno warmup`), the real entry points
compile nothing more: a pedestal run and a data run read from MIDAS files, with every
built-in configuration, find every kernel already compiled for their argument types."""

from __future__ import annotations

import dataclasses

from cygno.reco.config import BUILTIN, load_config
from cygno.reco.kernels import compile_all, compiled_signatures
from cygno.reco.pedestal import compute_pedestal
from cygno.reco.reconstruct import reconstruct_file
from cygno.reco.simulate.run import simulate_run

SHAPE = (256, 256)


def test_no_kernel_compiles_after_compile_all(tmp_path):
    ready = compile_all()
    assert len(ready["picture.fused_pass"]) == 2  # read-only and writable frames

    ped, run = tmp_path / "run00001.mid.gz", tmp_path / "run00002.mid.gz"
    simulate_run(ped, 1, 3, kind="pedestal", shape=SHAPE, seed=1, camera_seed=2)
    simulate_run(run, 2, 3, kind="mixed", shape=SHAPE, seed=3, camera_seed=2)
    maps = compute_pedestal(ped)
    clusters = 0
    for name in BUILTIN:
        config = load_config(name)  # its own value types, from its TOML
        inside = dataclasses.replace(config.acceptance, x_min=0, x_max=SHAPE[0])
        config = dataclasses.replace(config, acceptance=inside)
        summary = reconstruct_file(run, maps, config, out_path=tmp_path / f"{name}.root")
        clusters += summary.clusters

    assert clusters > 0  # the clustering and feature kernels did run
    assert compiled_signatures() == ready
