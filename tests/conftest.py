"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pyrivet.storage import ActorStore, MemoryDriver, SQLiteDriver
from pyrivet.testing import MockClock


@pytest.fixture(params=["memory", "sqlite"])
def driver_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ActorStore]:
    """A zero-arg callable building an unopened driver over this test's storage.

    Every call returns a driver over the *same* data, so a restart is simulated by
    closing one runtime and starting another with a new driver: for SQLite a new
    driver object on the same directory (usable once the previous one closed), for
    memory the one `MemoryDriver` of the test (it keeps its data across close/open).
    """
    if request.param == "memory":
        memory = MemoryDriver()
        return lambda: memory
    data_dir = tmp_path / "sqlite-data"
    return lambda: SQLiteDriver(data_dir)


@pytest.fixture
def clock() -> MockClock:
    return MockClock()
