"""Job entry point: ``python -m <this package>.job <payload-file> <result-file>``.

Runs on a worker node with no Prefect at all (it imports only the payload protocol and
the called function's own module), in the job's sandbox: load the call, run it, write
the value or the exception with its traceback. The exit code is 0 whenever a result was
written, even for a function that raised; a non-zero exit means the job itself broke
(payload missing, result not writable), and the runner says so.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from . import payload

PARENT_PID_ENV = "HTCONDOR_RUNNER_PARENT_PID"
EXIT_INFRASTRUCTURE = 3


_watching: list[int] = []


def watch_parent() -> None:
    """Local backend only: die with the flow process instead of running on as an orphan
    (once per process: a warm worker runs many jobs)."""
    parent = os.environ.get(PARENT_PID_ENV)
    if parent and not _watching:
        _watching.append(int(parent))
        threading.Thread(target=_watch, args=(int(parent),), daemon=True).start()


def _watch(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os.killpg(os.getpgrp(), signal.SIGKILL)


def run(payload_file: str, result_file: str, *, fresh: bool = False) -> int:
    """Load the call, run it, write its result. `fresh`: this process exists for this one
    job, its collector off until the call is loaded (see :func:`_fresh_process`)."""
    try:
        fn, args, kwargs = payload.load_call(Path(payload_file).read_bytes())
    except Exception:
        traceback.print_exc()
        print(f"htcondor_runner job: cannot load the payload {payload_file}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    if fresh:
        gc.freeze()  # what the imports built lives as long as the process
        gc.enable()
    try:
        data = payload.dump_value(fn(*args, **kwargs))
    except BaseException as exc:
        data = payload.dump_error(exc)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    try:
        payload.write_bytes(result_file, data)
    except Exception:
        traceback.print_exc()
        print(f"htcondor_runner job: cannot write the result {result_file}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    return 0


def main(argv: list[str] | None = None, *, fresh: bool = False) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(f"usage: python -m {__spec__.name} <payload-file> <result-file>", file=sys.stderr)
        return 2
    watch_parent()
    return run(argv[0], argv[1], fresh=fresh)


def _fresh_process() -> int:
    """A job in its own process (a warm worker calls :func:`main` instead). Loading the
    call imports ~150 000 long-lived objects (modules, numba's types and registries)
    that the cyclic collector would traverse again and again while they are created, and
    in each of the full collections of the interpreter's shutdown: a third of the job's
    fixed CPU. So the collector is off while the call loads, and its survivors are frozen
    out of it then and again before exit; the call itself runs with it on."""
    gc.disable()
    try:
        return main(fresh=True)
    finally:
        gc.freeze()


if __name__ == "__main__":
    sys.exit(_fresh_process())
