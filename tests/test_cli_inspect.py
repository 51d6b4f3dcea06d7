"""``pyrivet inspect`` as a subprocess: against a data directory (offline) and against
a served app (``pyrivet serve`` in a subprocess)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_process import APP, ServeProcess

pytestmark = pytest.mark.slow


def inspect(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyrivet", "inspect", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def ok(cwd: Path, *args: str) -> Any:
    done = inspect(cwd, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def test_inspect_a_data_directory(app_dir: Path) -> None:
    data = ["--data-dir", ".pyrivet", "--app", "app:registry"]
    # `call` runs an action of an actor that exists: a first run of the app creates it.
    missing = inspect(app_dir, *data, "call", "counter:room", "increment", "2")
    assert missing.returncode == 1
    assert "holds no pyrivet data" in missing.stderr
    seed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import asyncio, app\n"
            "from pyrivet import Client\n"
            "async def main():\n"
            "    async with app.registry.runtime(data_dir='.pyrivet') as rt:\n"
            "        await Client(rt).get_or_create('counter', ['room']).increment(1)\n"
            "asyncio.run(main())\n",
        ],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seed.returncode == 0, seed.stderr
    assert ok(app_dir, *data, "call", "counter:room", "increment", "2") == {"output": 3}

    listed = ok(app_dir, "--data-dir", ".pyrivet", "list", "--json")
    assert [(a["name"], a["key"], a["awake"]) for a in listed["actors"]] == [
        ("counter", ["room"], False)
    ]
    actor_id = listed["actors"][0]["actor_id"]
    table = inspect(app_dir, "--data-dir", ".pyrivet", "list")
    assert table.returncode == 0
    assert "counter" in table.stdout and actor_id in table.stdout and "asleep" in table.stdout

    state = ok(app_dir, "--data-dir", ".pyrivet", "state", actor_id)
    assert state["state"]["count"] == 3

    history = ok(app_dir, "--data-dir", ".pyrivet", "history", "counter:room", "--limit", "100")
    kinds = [(e["kind"], e["name"], e["args"]) for e in history["entries"]]
    assert ("action", "increment", [1]) in kinds and ("action", "increment", [2]) in kinds
    first_action = next(e["seq"] for e in history["entries"] if e["args"] == [1])
    second_action = next(e["seq"] for e in history["entries"] if e["args"] == [2])
    page = ok(app_dir, "--data-dir", ".pyrivet", "history", actor_id, "--limit", "1")
    assert len(page["entries"]) == 1 and page["next_after"] == page["entries"][0]["seq"]

    at = ok(app_dir, "--data-dir", ".pyrivet", "state-at", actor_id, str(first_action))
    assert at["state"]["count"] == 1
    diff = ok(
        app_dir, "--data-dir", ".pyrivet", "diff", actor_id, str(first_action), str(second_action)
    )
    assert {"op": "replace", "path": ["count"], "old": 1, "new": 3} in diff["changes"]

    no_seq = inspect(app_dir, "--data-dir", ".pyrivet", "state-at", actor_id, "0")
    assert no_seq.returncode == 1 and "seq 0" in no_seq.stderr
    unknown = inspect(app_dir, "--data-dir", ".pyrivet", "state", "nope")
    assert unknown.returncode == 1 and "no actor with id 'nope'" in unknown.stderr
    no_app = inspect(app_dir, "--data-dir", ".pyrivet", "call", actor_id, "increment")
    assert no_app.returncode == 1 and "--app" in no_app.stderr
    bad_arg = inspect(app_dir, *data, "call", actor_id, "increment", "two")
    assert bad_arg.returncode == 1 and "not JSON" in bad_arg.stderr


def test_inspect_a_served_app(app_dir: Path) -> None:
    token = "cli-token"
    server = ServeProcess(
        app_dir, ["--port", "0", "--log-level", "warning", "--inspector-token", token]
    )
    try:
        port = server.wait_serving()
        url = ["--url", f"http://127.0.0.1:{port}"]
        created = httpx.post(
            f"http://127.0.0.1:{port}/actors", json={"name": "counter", "key": "a"}
        )
        assert created.status_code == 200
        assert ok(app_dir, *url, "call", "counter:a", "increment", "5") == {"output": 5}
        listed = ok(app_dir, *url, "list", "--json", "--name", "counter")
        assert [(a["key"], a["awake"]) for a in listed["actors"]] == [(["a"], True)]
        actor_id = listed["actors"][0]["actor_id"]
        assert ok(app_dir, *url, "call", actor_id, "increment") == {"output": 6}
        failed = inspect(app_dir, *url, "call", actor_id, "nothing")
        assert failed.returncode == 1 and "action_not_found" in failed.stderr

        # Offline while the server holds the data directory: refused, naming the way out.
        locked = inspect(app_dir, "--data-dir", ".pyrivet", "list")
        assert locked.returncode == 1
        assert "already in use" in locked.stderr and "--url" in locked.stderr
        # Reads through the inspector API, with its token.
        no_token = inspect(app_dir, *url, "history", actor_id)
        assert no_token.returncode == 1 and "--token" in no_token.stderr
        wrong = inspect(app_dir, *url, "--token", "nope", "state", actor_id)
        assert wrong.returncode == 1 and "inspector/unauthorized" in wrong.stderr
        authed = [*url, "--token", token]
        state = ok(app_dir, *authed, "state", "counter:a")
        assert state["actor"]["actor_id"] == actor_id and state["state"]["count"] == 6
        history = ok(app_dir, *authed, "history", actor_id)
        changed = [e for e in history["entries"] if e["kind"] == "action"]
        assert [e["state"]["count"] for e in changed] == [5, 6]
        first, second = changed[0]["seq"], changed[1]["seq"]
        assert ok(app_dir, *authed, "state-at", actor_id, str(first))["state"]["count"] == 5
        diff = ok(app_dir, *authed, "diff", actor_id, str(first), str(second))
        assert {"path": "count", "op": "change", "before": 5, "after": 6} in diff["changes"]
    finally:
        server.signal(signal.SIGTERM)
        server.wait_exit()
        server.close()
    # Once it stopped, the same directory opens offline.
    assert ok(app_dir, "--data-dir", ".pyrivet", "state", "counter:a")["state"]["count"] == 6
