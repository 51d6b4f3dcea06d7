"""The inspector page in a real browser, against ``pyrivet serve`` with the token it
generated and printed.

Serves a counter app on a free port and a temporary data directory, then runs
``node inspector.mjs URL CHROMIUM`` (playwright-core driving Debian's headless
Chromium): open the printed page URL, find the actor by its key, run an action from
the console, see the state and the timeline update (also for a call made elsewhere),
slide back and rewind; then the test checks the state and the history through the API.

Needs ``node``, ``/usr/bin/chromium`` (or ``PYRIVET_CHROMIUM``) and the npm package of
tests/browser (playwright-core; scripts/check installs it), which node finds from here.
Without them the test is skipped, unless ``PYRIVET_REQUIRE_CHROMIUM=1`` (CI), which
turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from serve_process import ServeProcess

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "inspector.mjs"
#: Seconds the whole scenario may take (the script's own waits are 15 s each).
SCENARIO_TIMEOUT = 60.0

APP = """
from pyrivet import Registry, actor

counter = actor("counter", state={"count": 0})

@counter.action
def increment(c, amount=1):
    c.state["count"] += amount
    return c.state["count"]

registry = Registry([counter])
"""


def tools() -> tuple[str, str]:
    node = shutil.which("node")
    chromium = os.environ.get("PYRIVET_CHROMIUM", "/usr/bin/chromium")
    missing = []
    if not Path(chromium).exists():
        missing.append(f"{chromium} (`apt-get install -y chromium`)")
    if node is None:
        missing.append("node")
    if not (HERE.parent / "node_modules" / "playwright-core").is_dir():
        missing.append("tests/browser/node_modules (`npm install` there)")
    if missing:
        reason = "the inspector browser test needs " + " and ".join(missing)
        if os.environ.get("PYRIVET_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{reason}; PYRIVET_REQUIRE_CHROMIUM=1 (CI) forbids skipping")
        pytest.skip(reason)
    assert node is not None
    return node, chromium


def http(base: str, method: str, path: str, body: Any = None, token: str = "") -> Any:
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_find_call_watch_and_rewind_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, chromium = tools()
    monkeypatch.delenv("PYRIVET_INSPECTOR_TOKEN", raising=False)
    (tmp_path / "app.py").write_text(APP)
    args = ["--port", "0", "--data-dir", str(tmp_path / "data"), "--log-level", "warning"]
    server = ServeProcess(tmp_path, args)
    driver: subprocess.Popen[str] | None = None
    try:
        port = server.wait_serving()
        line = server.wait_line(lambda s: "pyrivet: inspector at" in s)
        page_url = line.split("inspector at ")[1].strip()
        token = page_url.split("#token=")[1]
        assert page_url.startswith(f"http://127.0.0.1:{port}/ui#token=") and len(token) >= 24
        base = f"http://127.0.0.1:{port}"
        url = "/gateway/counter/action/increment?rvt-method=getOrCreate&rvt-key="
        assert http(base, "POST", url + "room-1", {"args": [2]}) == {"output": 2}
        assert http(base, "POST", url + "sleepy", {"args": [1]}) == {"output": 1}

        driver = subprocess.Popen(
            [node, str(SCRIPT), page_url, chromium],
            cwd=HERE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert driver.stdout is not None
        result: dict[str, Any] | None = None
        for raw in driver.stdout:
            message = json.loads(raw)
            if message.get("step") == "call":
                assert http(base, "POST", url + "room-1", {"args": [1]}) == {"output": 8}
                continue
            assert message["ok"], (
                f"{message['error']}\n--- page errors ---\n{message['pageErrors']}"
                f"\n--- server log ---\n{server.output()}"
            )
            result = message
        driver.wait(timeout=SCENARIO_TIMEOUT)
        assert result is not None, server.output()
        assert result["external"] == []  # nothing but this server was asked for
        assert result["grown"] == result["max"] + 1

        inspect = "/gateway/counter/inspector/{}?rvt-method=get&rvt-key=room-1"
        state = http(base, "GET", inspect.format("state"), token=token)
        assert state["state"] == {"count": 2}
        last = http(base, "GET", inspect.format("history") + "&limit=1000", token=token)
        entry = last["entries"][-1]
        assert (entry["kind"], entry["args"], entry["by"]) == (
            "rewind",
            [result["rewoundTo"]],
            "inspector",
        )
    finally:
        if driver is not None:
            if driver.poll() is None:
                driver.kill()
            driver.wait(timeout=10)
            if driver.stdout is not None:
                driver.stdout.close()
        server.close()
