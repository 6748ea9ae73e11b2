"""The fault-injection suite: every case breaks one thing on purpose (bytes, services,
processes, the bridge) and asserts that no raw byte is lost, nothing is written twice,
the catalog stays true to the bytes and the failure says one clear thing.

Every test here carries the ``faults`` marker (``pytest -m faults`` runs the suite
alone); the default cases are fast and run with ``make test``, heavier variants carry
``bench`` as well.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.flows.harness import Platform, platform


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def plat(prefect_api: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    with platform(tmp_path / "platform", monkeypatch) as p:
        yield p
