"""Consistency audit between a catalog and a storage listing, the way Rucio's auditor
does it: the catalog is read before *and* after the listing, so files that appear or
vanish while the (long) listing runs are never misclassified.

- dark: on storage, unknown to the catalog in both snapshots (nobody knows why it is there)
- lost: known to the catalog in both snapshots, missing from storage
- files in only one catalog snapshot changed during the audit and are left alone.

Plain functions over key sets; the caller decides what to do, within safety thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class AuditResult:
    dark: tuple[str, ...]
    lost: tuple[str, ...]
    consistent: tuple[str, ...]
    in_flight: tuple[str, ...]


def audit(before: Iterable[str], listing: Iterable[str], after: Iterable[str]) -> AuditResult:
    """Classify keys given catalog snapshots taken before and after ``listing``."""
    before, listing, after = set(before), set(listing), set(after)
    stable = before & after
    return AuditResult(
        dark=tuple(sorted(listing - before - after)),
        lost=tuple(sorted(stable - listing)),
        consistent=tuple(sorted(stable & listing)),
        in_flight=tuple(sorted(before ^ after)),
    )


def action_budget(total: int, max_fraction: float) -> int:
    """How many automatic repairs one pass may make: ``max_fraction`` of ``total``, at
    least one (a single missing copy is routine; a mass disappearance needs a human)."""
    if not 0.0 <= max_fraction <= 1.0:
        raise ValueError(f"max_fraction must be within [0, 1], got {max_fraction}")
    return max(1, math.floor(total * max_fraction))
