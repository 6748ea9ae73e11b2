"""Functions the runner tests send to jobs. Imports nothing from Prefect or pytest, so a
job loading them by module reference stays as light as a production job."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def timed_square(x: int, seconds: float) -> dict:
    """Square ``x`` after ``seconds``, saying when and where it ran."""
    start = time.time()
    time.sleep(seconds)
    return {"value": x * x, "start": start, "end": time.time(), "pid": os.getpid()}


def trivial(x: int) -> int:
    return x + 1


def fail_deep(message: str) -> None:
    def inner() -> None:
        raise ValueError(message)

    inner()


def fail_unless_marker(marker: str) -> str:
    """Fails the first time (creating ``marker``), succeeds afterwards."""
    path = Path(marker)
    if not path.exists():
        path.write_text("seen")
        raise RuntimeError("first attempt fails on purpose")
    return "second attempt"


def chatty(n: int) -> int:
    for i in range(n):
        print(f"chatty line {i}", flush=True)
    print("chatty warning on stderr", file=sys.stderr, flush=True)
    return n


def hog(megabytes: int, seconds: float) -> int:
    """Hold ``megabytes`` of resident memory for ``seconds``."""
    block = bytearray(b"\x01") * (megabytes * 1024 * 1024)
    time.sleep(seconds)
    return len(block) // (1024 * 1024)


def sleep_with_pidfile(pidfile: str, seconds: float) -> int:
    Path(pidfile).write_text(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


def imported_top_level_modules() -> list[str]:
    return sorted({name.split(".")[0] for name in sys.modules})


def count_call(counter: str, x: int) -> int:
    """Appends a line to ``counter`` per call, so a test can see whether a job ran."""
    with open(counter, "a") as handle:
        handle.write(f"{x}\n")
    return x * 10


def sandbox_view(relative_name: str) -> dict:
    """What a job sees around it: its directory, its environment, and whether a file
    the flow has in its own working directory is visible by that relative name."""
    return {
        "cwd": os.getcwd(),
        "listing": sorted(os.listdir(".")),
        "environment": dict(os.environ),
        "sees_flow_file": Path(relative_name).exists(),
        "sys_path": list(sys.path),
        "pid": os.getpid(),
    }
