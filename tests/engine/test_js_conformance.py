"""Conformance through the Rivet Engine: the official RivetKit JavaScript client
(``rivetkit@2.3.19``), pointed at a real engine's gateway, against
``pyrivet serve tests/conformance/app.py --engine URL`` as an envoy.

The scenarios and their checks are the standalone suite's (tests/conformance/
test_js_client.py, imported below), in json, cbor and bare; only the target differs.
One engine and one envoy serve the module. Where the engine itself answers (an actor
id it cannot parse), the check is this module's own.

Needs ``node``, tests/conformance/js/node_modules and the engine binary from it; the
skips become failures with ``PYRIVET_REQUIRE_NODE=1`` / ``PYRIVET_REQUIRE_ENGINE=1``.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.test_js_client import (
    ENCODINGS,
    HERE,
    JS_DIR,
    SCRIPT,
    _explain,
    _Lines,
    _node_env,
    _result_line,
    node,
    run_scenario,
    test_actions_over_a_connection,
    test_actions_over_http,
    test_an_oversize_call_fails_alone,
    test_connection_params_and_rejection,
    test_creation_input,
    test_events_reach_only_subscribed_connections,
    test_queue_send_with_and_without_wait,
    test_raw_request,
    test_raw_websocket,
    test_user_errors_reach_the_client,
)
from serve_process import ServeProcess

from .conftest import Engine

__all__ = [
    "node",
    "test_actions_over_a_connection",
    "test_actions_over_http",
    "test_an_oversize_call_fails_alone",
    "test_connection_params_and_rejection",
    "test_creation_input",
    "test_events_reach_only_subscribed_connections",
    "test_queue_send_with_and_without_wait",
    "test_raw_request",
    "test_raw_websocket",
    "test_user_errors_reach_the_client",
]

pytestmark = pytest.mark.slow


POOL = "pyrivet-conformance"
#: Each first call of a scenario creates its actor through the engine's workflows.
WAIT_SCALE = 3
SCENARIO_TIMEOUT = 150.0
START_TIMEOUT = 60.0


class EnvoyTarget:
    """The engine's gateway as a scenario target, with the envoy process behind it."""

    def __init__(self, engine: Engine, envoy: ServeProcess, pool: str = POOL) -> None:
        self.engine = engine
        self.envoy = envoy
        self.scenario_env = {
            "RIVET_TOKEN": engine.token,
            "RIVET_NAMESPACE": "default",
            "RIVET_POOL": pool,
            "SCENARIO_WAIT_SCALE": str(WAIT_SCALE),
        }
        self.scenario_timeout = SCENARIO_TIMEOUT

    @property
    def url(self) -> str:
        return self.engine.endpoint

    def log_tail(self, n: int = 40) -> str:
        envoy = "\n".join(self.envoy.lines[-n:]) or "(no envoy output)"
        return f"{envoy}\n--- rivet-engine log ---\n{self.engine.log_tail(n)}"


@pytest.fixture(scope="module")
def engine(module_engine: Engine) -> Engine:
    return module_engine


def start_envoy(engine: Engine, pool: str, data: Path) -> ServeProcess:
    """``pyrivet serve app:registry --engine URL`` hosting the conformance app for
    ``pool``, once it connected."""
    args = ["--engine", engine.endpoint, "--token", engine.token, "--pool", pool]
    args += ["--data-dir", str(data), "--log-level", "info"]
    envoy = ServeProcess(HERE, args)
    try:
        envoy.wait_line(lambda s: "pyrivet: hosting" in s, timeout=START_TIMEOUT)
    except BaseException:
        envoy.close()
        raise
    return envoy


@pytest.fixture(scope="module")
def server(
    node: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EnvoyTarget]:
    """The module's envoy process."""
    envoy = start_envoy(engine, POOL, tmp_path_factory.mktemp("envoy") / "data")
    try:
        yield EnvoyTarget(engine, envoy)
    finally:
        envoy.close()


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_get_get_or_create_and_create(node: str, server: EnvoyTarget, encoding: str) -> None:
    result = run_scenario(node, server, "lookup", encoding)
    assert (result["missing"]["group"], result["missing"]["code"]) == ("actor", "not_found")
    # A create of a taken key: the engine's create op waits for the refused actor's
    # "failed" (duplicate_key) and "destroy started" messages in an unbiased
    # `tokio::select!`, so when both arrived it answers either (pegboard
    # ops/actor/create.rs). The taken key's actor is untouched either way (checked
    # by the scenario).
    refused = {("actor", "duplicate_key"), ("actor", "destroyed_during_creation")}
    for duplicate in (result["duplicate"], result["duplicateOfGetOrCreate"]):
        assert (duplicate["group"], duplicate["code"]) in refused
    # The engine's gateway refuses an id it cannot parse before any envoy sees it
    # (its log: "invalid actor id in path ... unsupported ID version").
    unknown = result["unknownId"]
    assert (unknown["group"], unknown["code"]) == ("core", "internal_error")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_connection_stays_open_while_its_actor_sleeps(
    node: str, server: EnvoyTarget, encoding: str
) -> None:
    """The standalone scenario of that name, through the engine."""
    result = run_scenario(node, server, "hibernation", encoding)
    assert result["naps"] == 1  # it did sleep
    assert result["seen"] == [1, 3]  # events before and after, on one subscription
    assert result["sockets"] == 1  # no reconnect: the same WebSocket throughout
    assert "disconnected" not in result["statuses"]


class RestartedEnvoys(EnvoyTarget):
    """The envoys of one pool, one after the other, as a scenario target."""

    def __init__(self, engine: Engine, pool: str, data: Path) -> None:
        self.pool, self.data = pool, data
        self.envoys = [start_envoy(engine, pool, data / "first")]
        super().__init__(engine, self.envoys[0], pool)

    def restart(self) -> None:
        """SIGTERM the envoy (it drains: actors asleep, state committed, exit 0), then
        start a new one on an empty data directory."""
        old = self.envoys[-1]
        old.signal(signal.SIGTERM)
        assert old.wait_exit(START_TIMEOUT) == 0, old.output()
        self.envoys.append(start_envoy(self.engine, self.pool, self.data / f"{len(self.envoys)}"))
        self.envoy = self.envoys[-1]

    def log_tail(self, n: int = 40) -> str:
        return (
            "\n--- next envoy ---\n".join("\n".join(e.lines[-n:]) for e in self.envoys)
            + f"\n--- rivet-engine log ---\n{self.engine.log_tail(n)}"
        )

    def close(self) -> None:
        for envoy in self.envoys:
            envoy.close()


def run_across_restart(node: str, envoys: RestartedEnvoys, encoding: str) -> dict[str, Any]:
    """Run the ``reconnect`` scenario, restarting the envoy once it is connected and
    telling the scenario (a line on its stdin) when the new envoy is up."""
    env = _node_env(SCENARIO_TIMEOUT, {**envoys.scenario_env, "SCENARIO_RESTART_SIGNAL": "stdin"})
    client = subprocess.Popen(
        [node, str(SCRIPT), "reconnect", encoding, envoys.url],
        cwd=JS_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None and client.stdout is not None and client.stderr is not None
    out, err = _Lines(client.stdout), _Lines(client.stderr)
    try:
        connected = out.wait_for(lambda s: s.startswith('{"phase":"connected"'), START_TIMEOUT)
        if connected is None:
            pytest.fail(_explain("reconnect: never connected", out.tail(), err.tail(), envoys))
        envoys.restart()
        client.stdin.write("restarted\n")
        client.stdin.flush()
        try:
            client.wait(SCENARIO_TIMEOUT)
        except subprocess.TimeoutExpired:
            client.kill()
        out.join(5)
        err.join(5)
        result = _result_line(out.lines)
        log = _explain("reconnect across an envoy restart", out.tail(), err.tail(), envoys)
        if result is None or result.get("ok") is not True:
            pytest.fail(log)
        return result
    finally:
        if client.poll() is None:
            client.kill()
        client.wait(10)
        for stream in (client.stdin, client.stdout, client.stderr):
            stream.close()


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_connection_survives_an_envoy_restart(
    node: str, engine: Engine, tmp_path: Path, encoding: str
) -> None:
    """The standalone ``reconnect`` scenario with the envoy process restarted under the
    connected client: SIGTERM, then a new envoy with an empty data directory (the
    actor's state and its connection's record are in the engine's KV). The engine's
    gateway keeps the client's socket open meanwhile; the client's next call wakes the
    actor on the new envoy, which serves the same socket and connection again: the
    state is intact, events flow before and after on one subscription, and the client
    never saw a disconnection (one socket, one ``on_connect``)."""
    envoys = RestartedEnvoys(engine, f"pyrivet-restart-{encoding}", tmp_path)
    try:
        result = run_across_restart(node, envoys, encoding)
    finally:
        envoys.close()
    assert result["events"] == [5, 6]
    assert "disconnected" not in result["statuses"]
    assert result["opens"] == 0 and result["sockets"] == 1
    assert result["connects"] == 1
    assert result["errors"] == []
