"""The chat and collaborative-document examples in a real browser, across a restart.

For each example: build its page (esbuild, from the example's locked npm packages),
serve the example with ``pyrivet serve app:registry`` on a free port and a temporary
data directory, and run ``node scenarios.mjs SCENARIO URL CHROMIUM`` (playwright-core
driving Debian's headless Chromium). The script opens two pages; one types, the other
sees it; it then asks for a restart, which this test does with SIGHUP (in place: the
port stays open), and checks that both pages reconnect by themselves, that edits made
after the restart reach the other page, and that a fresh page gets everything from the
actor's persisted state.

Needs ``node``, ``/usr/bin/chromium`` (or ``PYRIVET_CHROMIUM``) and the npm packages of
tests/browser and of each example (``npm install`` in each; scripts/check does it).
Without them the tests are skipped, unless ``PYRIVET_REQUIRE_CHROMIUM=1`` (set by
.ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from serve_process import ServeProcess

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPT = HERE / "scenarios.mjs"
#: Seconds a whole scenario may take (the script's own waits are 15 s each).
SCENARIO_TIMEOUT = 50.0


def _require(what: list[str]) -> None:
    if not what:
        return
    reason = "the browser tests need " + " and ".join(what)
    if os.environ.get("PYRIVET_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"{reason}; PYRIVET_REQUIRE_CHROMIUM=1 (CI) forbids skipping")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def tools() -> tuple[str, str]:
    """(node, chromium) executables, or a skip (a failure in CI) naming what is missing."""
    node = shutil.which("node")
    chromium = os.environ.get("PYRIVET_CHROMIUM", "/usr/bin/chromium")
    missing = []
    if not Path(chromium).exists():
        missing.append(f"{chromium} (`apt-get install -y chromium`; .ci/run installs it)")
    if node is None:
        missing.append("node")
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        missing.append("tests/browser/node_modules (run `npm install` there)")
    _require(missing)
    assert node is not None
    return node, chromium


def build(example: Path) -> None:
    """Bundle the example's page into its dist/ (about a second with esbuild)."""
    if not (example / "node_modules").is_dir():
        _require([f"{example.relative_to(ROOT)}/node_modules (run `npm install` there)"])
    subprocess.run(
        ["npm", "run", "--silent", "build"],
        cwd=example,
        check=True,
        timeout=60,
        stdout=subprocess.DEVNULL,
    )


def run_scenario(
    scenario: str, example: Path, tools: tuple[str, str], data_dir: Path
) -> dict[str, Any]:
    """Serve ``example``, run the browser scenario, restart when it asks; its result."""
    node, chromium = tools
    build(example)
    args = ["--port", "0", "--data-dir", str(data_dir), "--log-level", "warning"]
    server = ServeProcess(example, args)
    driver: subprocess.Popen[str] | None = None
    try:
        port = server.wait_serving()
        driver = subprocess.Popen(
            [node, str(SCRIPT), scenario, f"http://127.0.0.1:{port}", chromium],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert driver.stdin is not None and driver.stdout is not None
        for line in driver.stdout:
            message = json.loads(line)
            if message.get("step") == "restart":
                server.signal(signal.SIGHUP)
                # The same process serves again once it prints its "serving" line.
                assert server.wait_serving() == port
                driver.stdin.write("restarted\n")
                driver.stdin.flush()
                continue
            assert message["ok"], (
                f"{message['error']}\n--- page errors ---\n{message['pageErrors']}"
                f"\n--- server log ---\n{server.output()}"
            )
            return dict(message)
        raise AssertionError(f"the browser script ended without a result:\n{server.output()}")
    finally:
        if driver is not None:
            if driver.poll() is None:
                driver.kill()
            driver.wait(timeout=10)
            for pipe in (driver.stdin, driver.stdout):
                if pipe is not None:
                    pipe.close()
        server.close()


def test_chat_in_two_pages_across_a_restart(tools: tuple[str, str], tmp_path: Path) -> None:
    result = run_scenario("chat", ROOT / "examples" / "chat", tools, tmp_path / "data")
    both = ["hello bob", "hi ada, after the restart"]
    assert result["ada"] == both
    assert result["bob"] == both  # after a reload: the history came from the actor


def test_document_in_two_pages_across_a_restart(tools: tuple[str, str], tmp_path: Path) -> None:
    result = run_scenario("document", ROOT / "examples" / "document", tools, tmp_path / "data")
    assert result["texts"] == ["Hello world"] * 3
