"""Slow-control values of the `Events` tree (production's environment variables).

LIME's slow control is the MIDAS equipment ``Environment``: the BOR ODB lists its input
channels (``/Equipment/Environment/Settings/Names Input``) with their values at the start
of the run (``/Equipment/Environment/Variables/Input``); each picture event may carry an
``INPT`` bank with fresh values in the same order. Raw values become physical units
through the history-display formulas of the ODB (``/History/Display/<group>/<panel>/
Formula[i]``, an expression in ``x``). As production, a value that cannot be read or
converted is written as -99.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MISSING = -99.0
SLOW_BANK = "INPT"

# branch → (input channel, (display group, panel, formula index)), production's
# modules_config/env_variables.txt and utilities.conversion_env_variables.
CHANNELS: dict[str, tuple[str, tuple[str, str, int]]] = {
    "Lime_pressure": ("P0IIn5", ("Environment", "Pressure", 0)),
    "Atm_pressure": ("P0IIn3", ("Environment", "Pressure", 0)),
    "Lime_temperature": ("P0IIn0", ("Environment", "Temperature", 1)),
    "Atm_temperature": ("P1UIn1", ("Environment", "Temperature", 0)),
    "Humidity": ("P1UIn5", ("GasSystem", "humidity", 1)),
    "Mixture_Density": ("P3IIn6", ("GasSystem", "Mixture Density", 1)),
}
BRANCHES: dict[str, str] = {name: "float32" for name in CHANNELS}

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _checked(node: ast.AST, formula: str) -> ast.AST:
    """The parsed formula, refused unless it is arithmetic in ``x`` (the ODB is data,
    never code to run)."""
    for child in ast.walk(node):
        allowed = isinstance(child, ast.Expression | ast.BinOp | ast.UnaryOp) or (
            type(child) in _OPS
        )
        allowed |= isinstance(child, ast.Constant) and isinstance(child.value, int | float)
        allowed |= isinstance(child, ast.Name) and child.id == "x"
        allowed |= isinstance(child, ast.Load)
        if not allowed:
            raise ValueError(f"unsupported element in formula {formula!r}")
    return node


def _value(node: ast.AST, x: float) -> float:
    if isinstance(node, ast.Expression):
        return _value(node.body, x)
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return x
    if isinstance(node, ast.BinOp):
        return _OPS[type(node.op)](_value(node.left, x), _value(node.right, x))
    return _OPS[type(node.op)](_value(node.operand, x))  # ast.UnaryOp


def parse_formula(formula: str) -> ast.AST:
    try:
        return _checked(ast.parse(formula, mode="eval"), formula)
    except SyntaxError as exc:
        raise ValueError(f"formula {formula!r}: {exc}") from exc


def evaluate_formula(formula: str | ast.AST, x: float) -> float:
    """Value of an arithmetic expression in ``x`` (numbers, + − × ÷ **, parentheses);
    anything else raises ValueError."""
    node = parse_formula(formula) if isinstance(formula, str) else formula
    try:
        return float(_value(node, x))
    except (ZeroDivisionError, OverflowError) as exc:
        raise ValueError(f"formula: {exc}") from exc


def _get(tree: Mapping[str, Any], *path: str) -> Any:
    for key in path:
        tree = tree[key]
    return tree


class SlowControl:
    """Current slow-control values of a run: from the BOR ODB, refreshed by INPT banks."""

    def __init__(self, odb: Mapping[str, Any]):
        try:
            names = list(_get(odb, "Equipment", "Environment", "Settings", "Names Input"))
            values = _get(odb, "Equipment", "Environment", "Variables", "Input")
        except (KeyError, TypeError):
            names, values = [], []
        self.names = names
        self.raw: dict[str, float] = {}
        self.update(values)
        self.formulas: dict[str, ast.AST] = {}
        for branch, (_, (group, panel, index)) in CHANNELS.items():
            try:
                formula = _get(odb, "History", "Display", group, panel, "Formula")
                formula = formula[index] if isinstance(formula, list) else formula
                self.formulas[branch] = parse_formula(str(formula))
            except (KeyError, IndexError, TypeError, ValueError):
                continue

    def update(self, values: Sequence[float] | np.ndarray) -> None:
        """New raw values of the input channels, in the ODB's channel order (an INPT bank)."""
        values = np.atleast_1d(np.asarray(values, dtype=np.float64))
        self.raw.update(zip(self.names, values.tolist(), strict=False))

    def record(self) -> dict[str, float]:
        """The branch values now, converted to physical units (-99 when unavailable)."""
        out = {}
        for branch, (channel, _) in CHANNELS.items():
            try:
                out[branch] = evaluate_formula(self.formulas[branch], self.raw[channel])
            except (KeyError, ValueError):
                out[branch] = MISSING
        return out
