"""Conformance: the official RivetKit JavaScript client against a live ``pyrivet serve``.

Each test runs ``node js/scenarios.mjs SCENARIO ENCODING URL`` (npm ``rivetkit@2.3.19``,
unmodified) against ``pyrivet serve app:registry`` (``app.py`` next to this file) on a
free loopback port with a temporary data directory, and checks the one JSON line
the script prints. Every scenario runs in json, cbor and bare.

Needs ``node`` and ``js/node_modules`` (``cd tests/conformance/js && npm install``; not
``npm ci``). Without them the tests are skipped, unless ``PYRIVET_REQUIRE_NODE=1``
(set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
JS_DIR = HERE / "js"
SCRIPT = JS_DIR / "scenarios.mjs"
ENCODINGS = ("json", "cbor", "bare")
#: Seconds a scenario may take; the script gives up by itself a little earlier.
SCENARIO_TIMEOUT = 30.0
SERVER_START_TIMEOUT = 20.0


# -- processes ---------------------------------------------------------------------


class _Lines:
    """Reads a text stream on a thread, so waits on it can be bounded."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate: Any, timeout: float) -> str | None:
        """The next line satisfying ``predicate``; None at end of stream or timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self._queue.put(None)
                return None
            if predicate(line):
                return line
        return None

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])


class ServeProcess:
    """``pyrivet serve app:registry`` in a subprocess; restartable on the same port.

    With ``listener`` (a listening socket this test holds, as systemd would) the
    server serves it through ``--fd``, so the port stays open while it is stopped.
    """

    def __init__(self, data_dir: Path, listener: socket.socket | None = None) -> None:
        self.scenario_env: dict[str, str] = {}
        self.scenario_timeout = SCENARIO_TIMEOUT
        self.data_dir = data_dir
        self.listener = listener
        self.port = 0 if listener is None else int(listener.getsockname()[1])
        self.process: subprocess.Popen[str] | None = None
        self.stderr: _Lines | None = None
        self.logs: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        where = ["--host", "127.0.0.1", "--port", str(self.port)]
        pass_fds: tuple[int, ...] = ()
        if self.listener is not None:
            where = ["--fd", str(self.listener.fileno())]
            pass_fds = (self.listener.fileno(),)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pyrivet",
                "serve",
                "app:registry",
                *where,
                "--data-dir",
                str(self.data_dir),
                "--log-level",
                "warning",
                "--grace-period",
                "5",
            ],
            cwd=HERE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=pass_fds,
        )
        assert self.process.stderr is not None
        self.stderr = _Lines(self.process.stderr)
        self._wait_serving()

    def _wait_serving(self) -> None:
        assert self.stderr is not None
        line = self.stderr.wait_for(lambda s: "pyrivet: serving" in s, SERVER_START_TIMEOUT)
        if line is None:
            self.kill()
            raise AssertionError(f"pyrivet serve did not start:\n{self.log_tail()}")
        self.port = int(line.split("http://127.0.0.1:")[1].split()[0])
        # It listens once it printed the line; /metadata must answer before any client.
        reply = httpx.get(f"{self.url}/metadata", timeout=10)
        assert reply.status_code == 200, reply.text
        assert set(reply.json()["actorNames"]) == {"counter", "guarded", "web", "mailbox"}

    def restart_in_place(self) -> None:
        """SIGHUP: the same process (PID) serves again, the port never closed."""
        assert self.process is not None
        pid = self.process.pid
        self.process.send_signal(signal.SIGHUP)
        assert self.stderr is not None
        restarting = self.stderr.wait_for(lambda s: "restarting in place" in s, 20)
        assert restarting is not None, f"no in-place restart:\n{self.log_tail()}"
        self._wait_serving()
        assert self.process.poll() is None and self.process.pid == pid

    def stop(self) -> None:
        """SIGTERM, and a clean exit (status 0) within the grace period."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"pyrivet serve ignored SIGTERM:\n{self.log_tail()}") from None
        self._collect()
        assert status == 0, f"pyrivet serve exited {status} on SIGTERM:\n{self.log_tail()}"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._collect()

    def _collect(self) -> None:
        if self.stderr is not None:
            self.stderr.join(5)
            self.logs.extend(self.stderr.lines)
            self.stderr = None
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    def log_tail(self, n: int = 40) -> str:
        lines = self.logs + (self.stderr.lines if self.stderr is not None else [])
        return "\n".join(lines[-n:]) or "(no server output)"


def _result_line(lines: list[str]) -> dict[str, Any] | None:
    """The script's result: the last stdout line that is a JSON object with ``ok``."""
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and "ok" in value:
                return value
    return None


def _node_env(
    timeout: float = SCENARIO_TIMEOUT, extra: dict[str, str] | None = None
) -> dict[str, str]:
    return {**os.environ, "SCENARIO_TIMEOUT_MS": str(int((timeout - 5) * 1000)), **(extra or {})}


class Target(Protocol):
    """What a scenario runs against: `ServeProcess`, or an envoy behind an engine
    (tests/engine/test_js_conformance.py), with what the script needs beside the URL."""

    #: Added to the script's environment (the client reads ``RIVET_TOKEN``,
    #: ``RIVET_NAMESPACE`` and ``RIVET_POOL`` from it).
    scenario_env: dict[str, str]
    #: Seconds one scenario may take.
    scenario_timeout: float

    @property
    def url(self) -> str: ...

    def log_tail(self, n: int = 40) -> str: ...


def _explain(what: str, stdout: str, stderr: str, server: Target) -> str:
    return (
        f"{what}\n--- node stdout ---\n{stdout[-4000:]}\n--- node stderr ---\n"
        f"{stderr[-4000:]}\n--- pyrivet serve stderr ---\n{server.log_tail()}"
    )


def run_scenario(node: str, server: Target, scenario: str, encoding: str) -> dict[str, Any]:
    """Run one scenario to completion; returns its JSON result (fails the test if not ok)."""
    timeout = server.scenario_timeout
    try:
        done = subprocess.run(
            [node, str(SCRIPT), scenario, encoding, server.url],
            cwd=JS_DIR,
            env=_node_env(timeout, server.scenario_env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(_explain(f"{scenario} {encoding}: no result in {timeout} s", out, err, server))
    result = _result_line(done.stdout.splitlines())
    if done.returncode != 0 or result is None or result.get("ok") is not True:
        message = result.get("error") if result else "no result line"
        pytest.fail(
            _explain(
                f"{scenario} {encoding} failed (exit {done.returncode}): {message}",
                done.stdout,
                done.stderr,
                server,
            )
        )
    assert result["scenario"] == scenario and result["encoding"] == encoding
    return result


# -- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def node() -> str:
    """The ``node`` executable, once ``js/node_modules`` holds the client."""
    executable = shutil.which("node")
    missing = []
    if executable is None:
        missing.append("`node` on PATH")
    if not (JS_DIR / "node_modules" / "rivetkit" / "package.json").is_file():
        missing.append("tests/conformance/js/node_modules (run `npm install` there)")
    if missing:
        reason = "the RivetKit JavaScript conformance suite needs " + " and ".join(missing)
        if os.environ.get("PYRIVET_REQUIRE_NODE") == "1":
            pytest.fail(f"{reason}; PYRIVET_REQUIRE_NODE=1 forbids skipping")
        pytest.skip(reason)
    assert executable is not None
    return executable


@pytest.fixture(scope="module")
def server(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One server for every scenario but ``reconnect`` (each uses its own keys)."""
    served = ServeProcess(tmp_path_factory.mktemp("conformance") / "data")
    served.start()
    try:
        yield served
    finally:
        served.stop()


# -- scenarios ---------------------------------------------------------------------

encodings = pytest.mark.parametrize("encoding", ENCODINGS)


def _error(info: dict[str, Any]) -> tuple[str, str]:
    return info["group"], info["code"]


@encodings
def test_actions_over_http(node: str, server: ServeProcess, encoding: str) -> None:
    result = run_scenario(node, server, "actions-http", encoding)
    assert result["actorId"]
    assert _error(result["unknownAction"]) == ("actor", "action_not_found")


@encodings
def test_actions_over_a_connection(node: str, server: ServeProcess, encoding: str) -> None:
    result = run_scenario(node, server, "actions-conn", encoding)
    assert sorted(result["results"])[-1] == 12
    assert _error(result["unknownAction"]) == ("actor", "action_not_found")


@encodings
def test_events_reach_only_subscribed_connections(
    node: str, server: ServeProcess, encoding: str
) -> None:
    result = run_scenario(node, server, "events", encoding)
    assert result["seen"] == [1, 3, 6]
    subscribed, other = result["perSocket"]
    assert subscribed == {"Init": 1, "Event": 3, "ActionResponse": 1}
    assert other == {"Init": 1, "Event": 0, "ActionResponse": 3}
    assert result["otherSeen"] == [116]


@encodings
def test_a_connection_stays_open_while_its_actor_sleeps(
    node: str, server: ServeProcess, encoding: str
) -> None:
    result = run_scenario(node, server, "hibernation", encoding)
    assert result["naps"] == 1  # it did sleep
    assert result["seen"] == [1, 3]  # events before and after, on one subscription
    assert result["sockets"] == 1  # no reconnect: the same WebSocket throughout
    assert "disconnected" not in result["statuses"]


@encodings
def test_connection_params_and_rejection(node: str, server: ServeProcess, encoding: str) -> None:
    result = run_scenario(node, server, "conn-params", encoding)
    assert result["overConn"] == {"user": "ann", "joined": 1}
    assert result["overHttp"]["user"] == "ann"
    forbidden = {
        "group": "user",
        "code": "forbidden",
        "message": "wrong token",
        "metadata": {"hint": "token"},
    }
    assert result["rejected"] == forbidden
    assert result["statusAfter"] == "idle"
    assert _error(result["badCall"]) == ("user", "forbidden")
    assert result["noParamsHttp"] == forbidden
    assert result["wrongHttp"] == forbidden


@encodings
def test_user_errors_reach_the_client(node: str, server: ServeProcess, encoding: str) -> None:
    result = run_scenario(node, server, "user-error", encoding)
    detail = {"detail": {"a": 1, "list": ["x", None], "nested": {"ok": True}}}
    assert result["http"] == {
        "group": "user",
        "code": "custom_code",
        "message": "failed with custom_code",
        "metadata": detail,
    }
    assert result["conn"] == {
        "group": "user",
        "code": "conn_code",
        "message": "failed with conn_code",
        "metadata": detail,
    }
    for plain in (result["httpPlain"], result["connPlain"]):
        assert plain == {
            "group": "user",
            "code": "user_error",
            "message": "plain failure",
            "metadata": None,
        }


@encodings
def test_get_get_or_create_and_create(node: str, server: ServeProcess, encoding: str) -> None:
    result = run_scenario(node, server, "lookup", encoding)
    # The client retries actor/not_found for a get() handle, then gives up with it.
    assert _error(result["missing"]) == ("actor", "not_found")
    assert _error(result["duplicate"]) == ("actor", "duplicate_key")
    assert _error(result["duplicateOfGetOrCreate"]) == ("actor", "duplicate_key")
    assert _error(result["unknownId"]) == ("actor", "not_found")


@encodings
def test_creation_input(node: str, server: ServeProcess, encoding: str) -> None:
    result = run_scenario(node, server, "input", encoding)
    assert result["viaCreate"] == {
        "hello": "world",
        "n": 1,
        "list": [1, "two", None],
        "nested": {"ok": True},
    }
    assert result["viaGetOrCreate"] == {"from": "getOrCreate"}
    assert result["viaConn"] == "over ws"
    assert result["withoutInput"] is None


@encodings
def test_queue_send_with_and_without_wait(node: str, server: ServeProcess, encoding: str) -> None:
    result = run_scenario(node, server, "queue", encoding)
    assert result["plain"] is None
    assert result["waited"] == {"status": "completed", "response": {"done": {"t": 7}}}
    assert result["noBody"] == {"status": "completed", "response": {"done": None}}
    assert result["timedOut"] == {"status": "timedOut"}
    assert result["unknown"] is None
    assert _error(result["invalid"]) == ("queue", "invalid_payload")
    assert _error(result["forbidden"]) == ("auth", "forbidden")
    assert result["direct"] == {"status": "completed", "response": {"done": "direct"}}
    # The sends that were accepted are queued, in order; the refused ones are not.
    assert result["pending"] == [{"job": 1}, {"job": 2}, {"job": 3}]


@encodings
def test_an_oversize_call_fails_alone(node: str, server: ServeProcess, encoding: str) -> None:
    result = run_scenario(node, server, "oversize", encoding)
    assert result["held"] == "released"
    assert _error(result["oversize"]) == ("message", "incoming_too_long")


@encodings
def test_raw_request(node: str, server: ServeProcess, encoding: str) -> None:
    result = run_scenario(node, server, "raw-http", encoding)
    assert result["failedStatus"] == 500
    assert result["failedError"] == {
        "group": "user",
        "code": "teapot",
        "message": "teapot here",
        "metadata": {"short": True},
    }


@encodings
def test_raw_websocket(node: str, server: ServeProcess, encoding: str) -> None:
    result = run_scenario(node, server, "raw-ws", encoding)
    assert result["received"] == ["hello /chat?room=1", "echo hi #1", [3, 2, 1]]
    assert result["closed"] == {"code": 1000, "reason": "done"}


def _reconnect_across(
    node: str, served: ServeProcess, encoding: str, restart: Callable[[], None]
) -> tuple[dict[str, Any], str]:
    """Run the ``reconnect`` scenario, calling ``restart`` once it is connected;
    returns its result line and the client's stderr."""
    served.start()
    client = subprocess.Popen(
        [node, str(SCRIPT), "reconnect", encoding, served.url],
        cwd=JS_DIR,
        env=_node_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert client.stdout is not None and client.stderr is not None
    out, err = _Lines(client.stdout), _Lines(client.stderr)
    try:
        connected = out.wait_for(lambda s: s.startswith('{"phase":"connected"'), 15)
        if connected is None:
            client.kill()
            client.wait(10)
            pytest.fail(_explain("reconnect: never connected", out.tail(), err.tail(), served))
        restart()
        try:
            client.wait(SCENARIO_TIMEOUT)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait(10)
        out.join(5)
        err.join(5)
        result = _result_line(out.lines)
        if result is None:
            pytest.fail(_explain("reconnect: no result line", out.tail(), err.tail(), served))
        if result.get("ok") is True and client.returncode != 0:
            pytest.fail(_explain("reconnect: ok but exit != 0", out.tail(), err.tail(), served))
        result["_log"] = _explain("reconnect", out.tail(), err.tail(), served)
        return result, err.tail(200)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(10)
        out.join(5)
        err.join(5)
        client.stdout.close()
        client.stderr.close()
        if served.process is not None and served.process.poll() is None:
            served.stop()
        else:
            served.kill()


def _held_listener() -> socket.socket:
    """A listening socket on a free loopback port, held by the test (as systemd would)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    listener.set_inheritable(True)
    return listener


@encodings
@pytest.mark.parametrize("restart", ["sighup", "held-socket"])
def test_reconnect_after_a_server_restart(
    node: str, tmp_path: Path, encoding: str, restart: str
) -> None:
    """Connect, increment, restart the server (same port and data dir): the same
    connection reopens by itself, re-subscribes, and the state is intact. The
    scenario uses no hooks.

    ``sighup`` restarts ``pyrivet serve`` in place; ``held-socket`` stops it
    (SIGTERM, exit 0) and starts a new one on a listening socket this test holds,
    the way systemd socket activation does. In both the port never closes, so the
    client's immediate reconnect waits in the listen backlog: rivetkit 2.3.19 gives
    up on a refused connection (see the next test and docs/server.md).
    """
    with contextlib.ExitStack() as stack:
        listener = None
        if restart == "held-socket":
            listener = stack.enter_context(_held_listener())
        served = ServeProcess(tmp_path / "data", listener)

        def stop_and_start() -> None:
            served.stop()
            served.start()  # a new process on the same socket and data dir

        again = served.restart_in_place if listener is None else stop_and_start
        result, client_log = _reconnect_across(node, served, encoding, again)
    if result.get("ok") is not True:
        pytest.fail(f"reconnect {encoding} {restart}: {result.get('error')}\n{result['_log']}")
    assert result["events"] == [5, 6]
    assert result["statuses"][:1] == ["disconnected"]
    # Never "idle" (given up) until the scenario disposes of the connection.
    assert result["statuses"][-2:] == ["connected", "idle"]
    assert "idle" not in result["statuses"][:-1]
    assert result["opens"] == 1
    # The server's close reason parsed as a structured error (no "failed to parse").
    assert {(e["group"], e["code"]) for e in result["errors"]} == {("ws", "going_away")}
    assert "failed to parse close reason" not in client_log


def test_reconnect_gives_up_when_the_port_closes(node: str, tmp_path: Path) -> None:
    """The limitation docs/server.md states: stop the server with nothing holding
    its socket and start a new one on the same port, and rivetkit 2.3.19 gives up
    (its first reconnect attempt is refused, which it does not retry). If this
    starts to fail, the client learned to retry: update docs/server.md."""
    served = ServeProcess(tmp_path / "data")

    def stop_and_start() -> None:
        served.stop()
        served.start()  # same port, but it was closed in between

    result, _ = _reconnect_across(node, served, "json", stop_and_start)
    assert result["ok"] is False
    assert "the client gave up reconnecting" in result["error"]
