"""Structured logs: actor name, key and id on records about an actor; the JSON format
of ``pyrivet serve --log-format json``."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from pyrivet import Client, MemoryDriver, Registry, actor
from pyrivet._util.logs import ActorTextFormatter, JsonFormatter
from pyrivet.errors import InternalError
from serve_process import ServeProcess

APP = """
from pyrivet import Registry, actor

crashy = actor("crashy", state={"n": 0})

@crashy.action
def boom(c):
    raise RuntimeError("boom")

@crashy.action
def note(c, text):
    c.log.warning("note: %s", text)
    return text

registry = Registry([crashy])
"""


def crashy_registry() -> Registry:
    crashy = actor("crashy", state={"n": 0})

    @crashy.action
    def boom(c: Any) -> None:
        raise RuntimeError("boom")

    return Registry([crashy])


async def test_runtime_records_carry_the_actor(caplog: pytest.LogCaptureFixture) -> None:
    async with crashy_registry().runtime(storage=MemoryDriver()) as runtime:
        handle = Client(runtime).get_or_create("crashy", ["room", "7"])
        actor_id = await handle.resolve()
        with caplog.at_level(logging.ERROR, logger="pyrivet"), pytest.raises(InternalError):
            await handle.boom()
    records = [r for r in caplog.records if "action boom failed" in r.getMessage()]
    assert len(records) == 1
    record = records[0]
    assert record.__dict__["actor"] == "crashy"
    assert record.__dict__["actor_key"] == ["room", "7"]
    assert record.__dict__["actor_id"] == actor_id

    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "ERROR" and line["logger"] == "pyrivet.actor"
    assert (line["actor"], line["actor_key"], line["actor_id"]) == (
        "crashy",
        ["room", "7"],
        actor_id,
    )
    assert "RuntimeError: boom" in line["exc_info"]
    text = ActorTextFormatter("%(levelname)s %(message)s").format(record)
    assert f"[actor=crashy key=room/7 id={actor_id}]" in text.splitlines()[0]


def test_json_formatter_leaves_out_actor_fields_of_other_records() -> None:
    record = logging.LogRecord("pyrivet.server", logging.INFO, __file__, 1, "hi %s", ("x",), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hi x" and "actor_id" not in line and "exc_info" not in line
    assert ActorTextFormatter("%(message)s").format(record) == "hi x"


@pytest.mark.slow
def test_serve_writes_json_lines_with_the_actor(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    server = ServeProcess(tmp_path, ["--port", "0", "--log-format", "json"])
    try:
        port = server.wait_serving()
        base = f"http://127.0.0.1:{port}/gateway/crashy/action"
        query = "?rvt-method=getOrCreate&rvt-key=k1"
        failed = httpx.post(f"{base}/boom{query}", json={"args": []}, timeout=10)
        assert failed.status_code == 500
        noted = httpx.post(f"{base}/note{query}", json={"args": ["hello"]}, timeout=10)
        assert noted.status_code == 200
        line = server.wait_line(lambda s: "note: hello" in s)
        boom = next(s for s in server.lines if "action boom failed" in s)
    finally:
        server.signal(signal.SIGTERM)
        server.wait_exit()
        server.close()
    note = json.loads(line)
    assert (note["actor"], note["actor_key"], note["level"]) == ("crashy", ["k1"], "WARNING")
    failure = json.loads(boom)
    assert failure["actor_id"] == note["actor_id"] and "RuntimeError: boom" in failure["exc_info"]
