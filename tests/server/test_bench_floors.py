"""The floors of bench/ do the durable work they stand for: ``echo_floor.py --commit``
commits before each answer, `bench_core.DiskFloorDriver` before each batch, both on a
database prepared as the one-commit floor's."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from pyrivet.storage import CommitRecord

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_core  # scripts of bench/, not a package
import echo_floor


async def _run_app(app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[str]:
    """Run the ASGI ``app`` on ``incoming`` messages; the types of the messages it sent."""
    log: list[str] = []
    queue = list(incoming)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        log.append(message["type"])

    await app(scope, receive, send)
    return log


async def test_echo_floor_commits_before_each_answer() -> None:
    log: list[str] = []
    app = echo_floor.make_echo_app(lambda: log.append("commit"))

    ws: list[dict[str, Any]] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "bytes": b"a"},
        {"type": "websocket.receive", "text": "b"},
        {"type": "websocket.disconnect"},
    ]
    sent = await _run_app(app, {"type": "websocket"}, ws)
    assert log == ["commit", "commit"]
    assert sent == ["websocket.accept", "websocket.send", "websocket.send"]
    log.clear()
    post: list[dict[str, Any]] = [{"type": "http.request", "body": b"x", "more_body": False}]
    sent = await _run_app(app, {"type": "http", "method": "POST"}, post)
    assert log == ["commit"]
    log.clear()
    sent = await _run_app(app, {"type": "http", "method": "GET"}, post)
    assert log == []  # only POSTs stand for a durable call
    assert sent == ["http.response.start", "http.response.body"]


async def test_echo_floor_answers_only_after_the_commit() -> None:
    events: list[str] = []
    app = echo_floor.make_echo_app(lambda: events.append("commit"))

    async def receive_one() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        events.append(message["type"])

    incoming: list[dict[str, Any]] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "bytes": b"a"},
        {"type": "websocket.disconnect"},
    ]
    await app({"type": "websocket"}, receive_one, send)
    assert events == ["websocket.accept", "commit", "websocket.send"]


def test_floor_db_is_prepared_as_the_commit_floor(tmp_path: Path) -> None:
    conn = bench_core.open_floor_db(str(tmp_path / "f.sqlite3"))
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        before = conn.execute("SELECT v FROM t WHERE k = 1").fetchone()[0]
        bench_core.bare_commit(conn)
        after = conn.execute("SELECT v FROM t WHERE k = 1").fetchone()[0]
        assert len(after) == 64 and after != before
        assert not conn.in_transaction  # committed, not left open
    finally:
        conn.close()


async def test_disk_floor_driver_commits_to_disk_per_batch(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite3"
    driver = bench_core.DiskFloorDriver(str(path))
    await driver.open()
    try:
        seen = sqlite3.connect(path)
        try:
            first = seen.execute("SELECT v FROM t WHERE k = 1").fetchone()[0]
            record = CommitRecord(actor_id="a", seq=1, state=b"\x01")
            await driver.commit([record])
            # another connection sees the floor's row changed: it was committed
            assert seen.execute("SELECT v FROM t WHERE k = 1").fetchone()[0] != first
        finally:
            seen.close()
    finally:
        await driver.close()


def test_gaps_are_taken_within_each_run() -> None:
    # the disk slowed down in the second run: the runs' own gaps are 10, 20 and 5
    # (median 10), the gap of the medians 125 - 120 = 5
    figures, floors = [110.0, 520.0, 125.0], [100.0, 500.0, 120.0]
    assert bench_core.paired_gap(figures, floors) == 10.0
