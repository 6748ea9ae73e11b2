"""sentinel: every few minutes, announce raw files that no notification brought in."""

from __future__ import annotations

from prefect import flow

from cygno.tasks.sentinel import announce, unseen_raw_files


@flow(name="sentinel")
def sentinel() -> int:
    return announce(unseen_raw_files())
