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

from collections.abc import Iterator

import pytest

from conformance.test_js_client import (
    ENCODINGS,
    HERE,
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

    def __init__(self, engine: Engine, envoy: ServeProcess) -> None:
        self.engine = engine
        self.envoy = envoy
        self.scenario_env = {
            "RIVET_TOKEN": engine.token,
            "RIVET_NAMESPACE": "default",
            "RIVET_POOL": POOL,
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


@pytest.fixture(scope="module")
def server(
    node: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EnvoyTarget]:
    """``pyrivet serve app:registry --engine URL`` hosting the conformance app."""
    data = tmp_path_factory.mktemp("envoy") / "data"
    args = ["--engine", engine.endpoint, "--token", engine.token, "--pool", POOL]
    args += ["--data-dir", str(data), "--log-level", "warning"]
    envoy = ServeProcess(HERE, args)
    try:
        envoy.wait_line(lambda s: "pyrivet: hosting" in s, timeout=START_TIMEOUT)
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
