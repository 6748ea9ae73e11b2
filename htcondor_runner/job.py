"""Job entry point: ``python -m <this package>.job <payload-uri> <result-uri>``.

Runs on a worker node with no Prefect at all (it imports only the payload protocol and
the called function's own module): load the call, run it, write the value or the
exception with its traceback. The exit code is 0 whenever a result was written, even
for a function that raised; a non-zero exit means the job itself broke (payload
missing, result not writable), and the runner says so.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback

from . import payload

PARENT_PID_ENV = "HTCONDOR_RUNNER_PARENT_PID"
EXIT_INFRASTRUCTURE = 3


def _watch_parent(parent: int) -> None:
    """Local backend only: die with the flow process instead of running on as an orphan."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os.killpg(os.getpgrp(), signal.SIGKILL)


def run(payload_uri: str, result_uri: str) -> int:
    options = payload.storage_options_from_env()
    try:
        fn, args, kwargs = payload.load_call(payload.read_bytes(payload_uri, options))
    except Exception:
        traceback.print_exc()
        print(f"htcondor_runner job: cannot load the payload {payload_uri}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    try:
        data = payload.dump_value(fn(*args, **kwargs))
    except BaseException as exc:
        data = payload.dump_error(exc)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    try:
        payload.write_bytes(result_uri, data, options)
    except Exception:
        traceback.print_exc()
        print(f"htcondor_runner job: cannot write the result {result_uri}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(f"usage: python -m {__spec__.name} <payload-uri> <result-uri>", file=sys.stderr)
        return 2
    parent = os.environ.get(PARENT_PID_ENV)
    if parent:
        threading.Thread(target=_watch_parent, args=(int(parent),), daemon=True).start()
    return run(argv[0], argv[1])


if __name__ == "__main__":
    sys.exit(main())
