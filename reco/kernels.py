"""Every numba kernel of the library, compiled into numba's on-disk cache in one call.

A cold cache costs ~40 s of compilation per process, paid by every worker at once on a
fresh checkout. ``make venv`` therefore runs :func:`compile_all` once (``cygno
warmup``); after it, a process only *loads* the kernels it calls. Each kernel is
compiled for every argument type the pipeline gives it: frames from a MIDAS file are
read-only views on the event's bytes, frames from a simulation or a notebook are
writable, and numba compiles one specialisation for each.

The cache is numba's default: ``__pycache__`` beside the sources (an editable
install, as ``make venv`` makes), else the user's cache directory when the install is
read-only; ``NUMBA_CACHE_DIR`` moves it.
"""

from __future__ import annotations

from types import ModuleType

from cygno.reco import features, idbscan, pedestal, picture, ransac
from cygno.reco.clustering import grid
from cygno.reco.pedestal import pedestal_from_frames
from cygno.reco.pmt import corrections as pmt_corrections
from cygno.reco.pmt import event as pmt_event
from cygno.reco.pmt import waveform as pmt_waveform
from cygno.reco.reconstruct import reconstruct_picture, tiny_picture, warm_up

#: The modules that hold numba kernels.
KERNEL_MODULES: tuple[ModuleType, ...] = (
    picture, pedestal, features, idbscan, ransac, grid, pmt_waveform, pmt_corrections,
)  # fmt: skip


def compiled_signatures() -> dict[str, tuple[str, ...]]:
    """``module.kernel`` → the argument types it is compiled (or loaded) for in this process."""
    from numba.core.dispatcher import Dispatcher

    found = {}
    for module in KERNEL_MODULES:
        for name, obj in vars(module).items():
            if isinstance(obj, Dispatcher):
                short = module.__name__.removeprefix("cygno.reco.")
                found[f"{short}.{name}"] = tuple(str(sig) for sig in obj.signatures)
    return found


def compile_all() -> dict[str, tuple[str, ...]]:
    """Compile (or load) every kernel for every argument type the pipeline uses (the
    chain and the pedestal maps, on read-only and on writable frames); returns
    :func:`compiled_signatures` afterwards."""
    warm_up()
    pmt_event.warm_up()  # waveforms: read-only DIG0 views and corrected DRS4 copies
    reconstruct_picture(*tiny_picture(writable=True))
    for writable in (False, True):
        frame = tiny_picture(writable)[0]
        pedestal_from_frames([frame, frame], 2)
    return compiled_signatures()
