"""sentinel: every few minutes, announce raw files that no notification brought in and
start again the files whose process-run crashed."""

from __future__ import annotations

from prefect import flow

from cygno.tasks.sentinel import announce, crashed_raw_files, restart, unseen_raw_files


@flow(name="sentinel")
def sentinel() -> dict[str, int]:
    return {"announced": announce(unseen_raw_files()), "restarted": restart(crashed_raw_files())}
