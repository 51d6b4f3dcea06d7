"""Fixtures shared by the client tests: the real server and the fake gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .fake_gateway import FakeGateway
from .server_support import ServerHandle


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    """The real pyrivet server (SQLite in the test's directory); its gate is opened
    before it stops, so a held ``wait`` action cannot block the stop."""
    handle = ServerHandle(tmp_path / "data")
    await handle.start()
    yield handle
    handle.gate.set()
    await handle.stop()


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    """The fake RivetKit gateway on a loopback port."""
    gw = FakeGateway()
    await gw.start()
    yield gw
    await gw.stop()
