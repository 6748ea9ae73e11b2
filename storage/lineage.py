"""Lineage: every product is named by what made it.

A product (pedestal maps, a reconstructed file, a quality report) carries a short
digest of its inputs: the code version, the configuration that governs it and the
products it was made from. Change any input and the digest changes, so a step never
takes an old product for the one it would make now; leave them all alone and the
product is found and reused. :func:`is_done` is the one "already done?" test every step
asks.

The code version has one source of truth: the installed distribution's metadata
(``pyproject.toml``'s ``version``), read with :mod:`importlib.metadata`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from typing import Any, Protocol

DISTRIBUTION = "cygno-pipeline"
DIGEST_LENGTH = 10


@cache
def code_version() -> str:
    """The version of the installed ``cygno-pipeline`` distribution."""
    return version(DISTRIBUTION)


def digest(value: Any) -> str:
    """Short SHA-256 of the canonical JSON of ``value`` (dataclasses become dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, tuple | set | frozenset):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def lineage(kind: str, **inputs: Any) -> str:
    """The lineage id of a product of ``kind`` made by this code from ``inputs``."""
    return digest({"kind": kind, "code": code_version(), **inputs})


@dataclass(frozen=True)
class Product:
    """What a step makes: its main object in the store and the lineage id of its inputs."""

    key: str
    lineage: str


class _Store(Protocol):
    def exists(self, key: str) -> bool: ...


def is_done(store: _Store, product: Product, recorded: str | None) -> bool:
    """The one "already done?" test: the catalog recorded this very lineage for the
    product (``recorded``; a product whose key embeds its lineage passes its own) and
    its object is still in the store. Anything else is made (again)."""
    return recorded == product.lineage and store.exists(product.key)
