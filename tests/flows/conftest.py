"""Flow tests run against ONE ephemeral Prefect server per session (started on first
use), each test with its own store, catalog, logbook and tape under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.flows.harness import Platform, platform


@pytest.fixture
def plat(prefect_api: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    with platform(tmp_path / "platform", monkeypatch) as p:
        yield p
