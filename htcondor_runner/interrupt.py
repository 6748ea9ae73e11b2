"""A flow process stopped with Ctrl+C ends within ``EXIT_GRACE_SECONDS``, whatever the
Prefect API does.

At interpreter exit Prefect hands its queued logs and events to the API and waits for
that without a bound (its services drain in ``threading``'s exit hooks, which run before
``atexit``). While the API does not answer (a server starved on a loaded machine, or
stopped) a flow process stopped with Ctrl+C, or with the SIGINT a Prefect worker
forwards when it is stopped, never ends, and its idle warm workers, ended at ``atexit``,
live on with it. Once SIGINT has arrived, the exit ends the idle warm workers first and
gives Prefect's drains ``EXIT_GRACE_SECONDS``: what the API has not taken by then is
lost, and the process ends with status 130, as an interrupted command does. A drain
that registers itself after the SIGINT would run before that hook, so a watchdog started
at the SIGINT ends the process after ``WATCHDOG_SECONDS`` in any case.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

from . import warm

EXIT_GRACE_SECONDS = 10.0
#: From the first SIGINT to the end of the process, whatever runs meanwhile.
WATCHDOG_SECONDS = 3 * EXIT_GRACE_SECONDS
EXIT_STATUS = 128 + signal.SIGINT

_armed = False


def bound_exit_after_interrupt() -> None:
    """Take SIGINT over from Python's default handler (main thread only, and only while
    nobody else handles it): it still raises ``KeyboardInterrupt``. (A later
    ``asyncio.run`` then leaves SIGINT to it, as it does for any handler of its own.)"""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_interrupt)


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    global _armed
    if not _armed:  # signal handlers run in the main thread, one at a time
        _armed = True
        try:
            # threading runs its exit hooks last registered first: this one runs before
            # every Prefect drain registered until now.
            threading._register_atexit(_exit_within_grace)  # type: ignore[attr-defined]
        except RuntimeError:  # the interpreter is exiting already
            _exit_within_grace()
        _start_timer(WATCHDOG_SECONDS)
    signal.default_int_handler(signum, frame)


def _exit_within_grace() -> None:
    warm.POOL.close()
    _start_timer(EXIT_GRACE_SECONDS)


def _start_timer(seconds: float) -> None:
    timer = threading.Timer(seconds, _end_now, args=(seconds,))
    timer.daemon = True
    timer.start()


def _end_now(seconds: float) -> None:
    warm.POOL.close()
    os.write(
        2,
        f"htcondor_runner: the Prefect API did not take the last logs and events within"
        f" {seconds:.0f} s of Ctrl+C; exiting without them\n".encode(),
    )
    os._exit(EXIT_STATUS)
