"""The figures of `make bench`, gathered into one table printed after every log line.

A benchmark calls ``figure(name, value, goal, better, unit)``; the table at the end
shows each value beside its goal, the ratio value/goal and whether the goal is met,
all measured in this run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    goal: float
    better: str  # "higher" or "lower"
    unit: str

    @property
    def met(self) -> bool:
        return self.value >= self.goal if self.better == "higher" else self.value <= self.goal


_FIGURES: list[Figure] = []


@pytest.fixture
def figure():
    """Record one figure for the summary table (and print it where it was measured)."""

    def record(name: str, value: float, goal: float, better: str, unit: str = "×") -> Figure:
        if better not in ("higher", "lower"):
            raise ValueError(f"better must be 'higher' or 'lower', not {better!r}")
        entry = Figure(name, value, goal, better, unit)
        _FIGURES.append(entry)
        print(f"  → {_row(entry)}")
        return entry

    return record


def _row(f: Figure) -> str:
    sign = "≥" if f.better == "higher" else "≤"
    verdict = "met" if f.met else "NOT met"
    return (
        f"{f.name:58s} {f.value:8.3f} {f.unit:3s} goal {sign} {f.goal:<6g} "
        f"value/goal {f.value / f.goal:5.2f}  {verdict}"
    )


def pytest_terminal_summary(terminalreporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.write_sep("=", "benchmark figures (each measured in this run)")
    for entry in _FIGURES:
        terminalreporter.write_line(_row(entry))
