"""Prefect retry conditions: retry any failure except the ones waiting cannot fix."""

from __future__ import annotations

from collections.abc import Callable


def retry_unless(*permanent: type[BaseException]) -> Callable[..., bool]:
    """A ``retry_condition_fn`` that refuses a retry when the task raised one of
    ``permanent`` (a corrupt file stays corrupt) and allows it for anything else."""

    def condition(task, task_run, state) -> bool:
        try:
            state.result()
        except permanent:
            return False
        except Exception:
            return True
        return True

    return condition
