"""A two-node Rivet Engine cluster with pyrivet envoys, for the multi-node test and
bench/bench_failover.py.

What runs, all real processes on this machine:

* a private ``nats-server`` on a free port (the engine nodes' pub/sub; a private one
  keeps two clusters of parallel runs from hearing each other), or, without the binary,
  the NATS at ``PYRIVET_NATS`` (default ``127.0.0.1:4222``);
* a PostgreSQL database of its own on the server at ``PYRIVET_POSTGRES_DSN`` (default
  ``postgresql://root@127.0.0.1:5432``, trust auth), created with ``psql`` and dropped
  (``WITH (FORCE)``) afterwards;
* two ``rivet-engine`` nodes on that database and NATS, started one after the other
  (2.3.19 fails creating its schema when two nodes create it at once); the first holds
  the UDB leader lease;
* `EngineBalancer`: a TCP forwarder the envoys connect through, to the first engine
  node that accepts (what a load balancer in front of the nodes does), so an envoy
  whose node died reconnects to the other;
* envoy processes of one pool, each named by ``MULTINODE_ENVOY`` and logging its
  actors' wake/sleep to a file (`read_ownership`), started by the cluster's
  `EnvoyRuntime`: `PYRIVET` (``pyrivet serve app:registry --engine …`` serving
  `LEDGER_APP`) or `RIVETKIT` (RivetKit 2.3.19's own Node envoy serving the same
  ledger, bench/js/rivetkit_ledger_envoy.mjs; needs ``node``).

`postgres_dsn`/`require_postgres` skip (or, with ``PYRIVET_REQUIRE_POSTGRES=1`` or
``PYRIVET_REQUIRE_ENGINE=1``, fail) when PostgreSQL is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from serve_process import ChildProcess, ServeProcess

from .conftest import ENGINE_BINARY, Engine, free_port, start_engine, stop_engine
from .history import Ownership, read_ownership

DEFAULT_DSN = "postgresql://root@127.0.0.1:5432"
#: The engine's default thresholds (Rivet 2.3.19), in milliseconds.
DEFAULT_THRESHOLDS: dict[str, int] = {
    "envoy_lost_threshold": 15_000,
    "envoy_ping_timeout": 15_000,
    "envoy_update_ping_interval": 3_000,
    "envoy_eligible_threshold": 10_000,
}
#: The lowest thresholds used: the engine validates none of these, but the lost and
#: ping timeouts must stay above the interval at which it records an envoy's ping (its
#: liveness check compares the recorded ping time with the lost threshold), with room
#: for a loaded machine. Rescheduling retries after 250 ms instead of 2 s.
FAST_THRESHOLDS: dict[str, int] = {
    "envoy_lost_threshold": 2_000,
    "envoy_ping_timeout": 2_000,
    "envoy_update_ping_interval": 500,
    "envoy_eligible_threshold": 1_500,
    "base_retry_timeout": 250,
}
#: For a leader kill: the lost threshold must outlast the other node taking the UDB
#: leader lease (9-11 s measured). Shorter, the envoys (disconnected meanwhile) stop
#: their actors themselves, and the engine may not learn it for long: the actor
#: workflows the dead node's worker held stay with it (gasoline reclaims a dead
#: worker's workflows after 30 s or more), so the gateway keeps routing requests to
#: the envoy, which no longer hosts the actor.
LEADER_THRESHOLDS: dict[str, int] = {**FAST_THRESHOLDS, "envoy_lost_threshold": 30_000}

#: The envoys' application: a ledger whose every write records which envoy made it,
#: and whose wake/sleep hooks append to ``MULTINODE_LOG`` with the machine-wide
#: monotonic clock (comparable across processes).
LEDGER_APP = """
import os, time
from pyrivet import Registry, actor

ENVOY = os.environ["MULTINODE_ENVOY"]
_LOG = os.open(os.environ["MULTINODE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

def _event(kind, c):
    os.write(_LOG, f"{kind} {c.actor_id} {ENVOY} {time.monotonic_ns()}\\n".encode())

ledger = actor("ledger", state={"count": 0, "envoy": None})

@ledger.on_wake
def on_wake(c):
    _event("wake", c)

@ledger.on_sleep
def on_sleep(c):
    _event("sleep", c)

@ledger.action
def bump(c):
    c.state["count"] += 1
    c.state["envoy"] = ENVOY
    return {"count": c.state["count"], "envoy": ENVOY, "actor": c.actor_id}

@ledger.action
def read(c):
    return {"count": c.state["count"], "envoy": c.state["envoy"], "actor": c.actor_id}

registry = Registry([ledger])
"""


def _unavailable(reason: str) -> None:
    required = [
        name
        for name in ("PYRIVET_REQUIRE_POSTGRES", "PYRIVET_REQUIRE_ENGINE")
        if os.environ.get(name) == "1"
    ]
    if required:
        pytest.fail(f"{reason}; {required[0]}=1 forbids skipping")
    pytest.skip(reason)


def postgres_dsn() -> str:
    """The PostgreSQL server's URL without a database (``PYRIVET_POSTGRES_DSN``)."""
    return os.environ.get("PYRIVET_POSTGRES_DSN", DEFAULT_DSN).rstrip("/")


def _psql(dsn: str, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", f"{dsn}/postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def require_postgres() -> str:
    """The DSN, after checking the server answers; skips (or fails when required)."""
    dsn = postgres_dsn()
    if shutil.which("psql") is None:
        _unavailable("the multi-node tests need `psql` to create their PostgreSQL database")
    try:
        answer = _psql(dsn, "select 1")
    except subprocess.TimeoutExpired:
        answer = None
    if answer is None or answer.returncode != 0:
        why = "timed out" if answer is None else answer.stderr.strip()
        _unavailable(f"PostgreSQL at {dsn} is unreachable ({why}); set PYRIVET_POSTGRES_DSN")
    if not ENGINE_BINARY.is_file():
        _unavailable(f"the multi-node tests need the rivet-engine binary at {ENGINE_BINARY}")
    return dsn


@contextlib.contextmanager
def database(dsn: str) -> Iterator[str]:
    """A fresh database on the server at ``dsn``; yields the engine's URL for it."""
    name = f"pyrivet_mn_{uuid.uuid4().hex[:12]}"
    created = _psql(dsn, f"CREATE DATABASE {name}")
    if created.returncode != 0:
        raise RuntimeError(f"could not create database {name}: {created.stderr}")
    try:
        yield f"{dsn}/{name}?sslmode=disable"
    finally:
        _psql(dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def nats() -> Iterator[str]:
    """A NATS address: a private ``nats-server``, or ``PYRIVET_NATS`` without one."""
    binary = shutil.which("nats-server")
    if binary is None:
        address = os.environ.get("PYRIVET_NATS", "127.0.0.1:4222")
        host, port = address.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
        except OSError:
            _unavailable(f"no nats-server binary and no NATS at {address}")
        yield address
        return
    nats_port = free_port()
    process = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(nats_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(nats_port, process)
        yield f"127.0.0.1:{nats_port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited at start")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} after {timeout} s")


class EngineBalancer:
    """A TCP forwarder on ``127.0.0.1:port`` to the first upstream that accepts.

    Runs on the event loop of ``async with``; each accepted connection is piped both
    ways by two tasks owned by the balancer and cancelled on exit.
    """

    def __init__(self, upstreams: list[int]) -> None:
        self.upstreams = upstreams
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> EngineBalancer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for port in self.upstreams:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            for source, sink in ((reader, up_writer), (up_reader, writer)):
                task = asyncio.ensure_future(_pipe(source, sink))
                self._pipes.add(task)
                task.add_done_callback(self._pipes.discard)
            return
        writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        sink.close()


@dataclass
class EnvoyProcess:
    """One envoy process; ``died_at`` is when it was seen gone."""

    name: str
    child: ChildProcess
    log_path: Path
    #: What the process prints on stderr once it hosts actors for the engine.
    ready: str
    died_at: int | None = None

    async def hosting(self, timeout: float = 90.0) -> None:
        """Wait until the process printed that it hosts actors for the engine."""
        await asyncio.to_thread(self.child.wait_line, lambda s: self.ready in s, timeout)

    def kill(self) -> int:
        """SIGKILL; returns the monotonic time (ns) once the process is reaped."""
        self.child.process.send_signal(signal.SIGKILL)
        self.child.process.wait(timeout=30)
        self.died_at = time.monotonic_ns()
        return self.died_at

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (drain); returns the exit status once it exited."""
        self.child.signal(signal.SIGTERM)
        status = self.child.wait_exit(timeout=timeout)
        self.died_at = time.monotonic_ns()
        return status


class EnvoyRuntime(Protocol):
    """What starts the ledger envoys of a `Cluster`: one runtime per cluster."""

    #: The runtime's name in figures and messages.
    name: str

    def start(self, built: Cluster, name: str, args: Sequence[str]) -> EnvoyProcess:
        """Start envoy ``name`` of ``built``'s pool through its balancer; ``args``
        are options of the runtime's command. Raises if the runtime is missing."""
        ...


def _envoy_env(built: Cluster, name: str, log_path: Path) -> dict[str, str]:
    """The environment both runtimes read: RivetKit's ``RIVET_*`` and the ledger's."""
    return {
        "RIVET_ENDPOINT": built.balancer.endpoint,
        "RIVET_TOKEN": built.nodes[0].token,
        "RIVET_POOL": built.pool,
        "RIVET_NAMESPACE": built.namespace,
        "MULTINODE_ENVOY": name,
        "MULTINODE_LOG": str(log_path),
    }


class PyrivetRuntime(EnvoyRuntime):
    """``pyrivet serve app:registry`` (`LEDGER_APP`) with a data directory of its own;
    ``args`` are more ``pyrivet serve`` options."""

    name = "pyrivet"

    def start(self, built: Cluster, name: str, args: Sequence[str]) -> EnvoyProcess:
        log_path = built.app_dir / f"{name}.ownership"
        data_dir = built.app_dir / f"data-{name}"
        env = _envoy_env(built, name, log_path)
        serve = ServeProcess(built.app_dir, ["--data-dir", str(data_dir), *args], env=env)
        return EnvoyProcess(name, serve, log_path, "pyrivet: hosting")


#: RivetKit's ledger envoy, beside the bench's other RivetKit scripts.
RIVETKIT_LEDGER = Path(__file__).resolve().parents[2] / "bench/js/rivetkit_ledger_envoy.mjs"


class RivetKitRuntime(EnvoyRuntime):
    """RivetKit 2.3.19's Node envoy (`RIVETKIT_LEDGER`, the packages of
    tests/conformance/js/node_modules), ``HOME`` a directory of its own (RivetKit
    keeps local files under it); ``args`` go to ``node`` before the script."""

    name = "rivetkit"

    def start(self, built: Cluster, name: str, args: Sequence[str]) -> EnvoyProcess:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("RivetKit's envoy needs `node` on PATH")
        log_path = built.app_dir / f"{name}.ownership"
        home = built.app_dir / f"home-{name}"
        home.mkdir(exist_ok=True)
        env = {**_envoy_env(built, name, log_path), "HOME": str(home)}
        command = [node, *args, str(RIVETKIT_LEDGER)]
        child = ChildProcess(f"rivetkit envoy {name}", command, built.app_dir, env=env)
        return EnvoyProcess(name, child, log_path, "rivetkit: hosting")


PYRIVET = PyrivetRuntime()
RIVETKIT = RivetKitRuntime()


@dataclass
class Cluster:
    """Two engine nodes, the balancer in front of them, and the envoys of one pool."""

    nodes: list[Engine]
    balancer: EngineBalancer
    namespace: str
    pool: str
    app_dir: Path
    runtime: EnvoyRuntime = PYRIVET
    envoys: list[EnvoyProcess] = field(default_factory=list)

    @property
    def gateways(self) -> list[str]:
        return [node.endpoint for node in self.nodes]

    def start_envoy(self, name: str, *args: str) -> EnvoyProcess:
        """Start envoy ``name`` of the cluster's runtime through the balancer
        (``args``: see the runtime); await `EnvoyProcess.hosting` before relying on it."""
        envoy = self.runtime.start(self, name, args)
        self.envoys.append(envoy)
        return envoy

    def ownership(self) -> list[Ownership]:
        """Every envoy's stretches of its actors, from the envoys' logs."""
        return [
            stretch
            for envoy in self.envoys
            for stretch in read_ownership(envoy.log_path, envoy.name, envoy.died_at)
        ]

    def kill_node(self, index: int) -> int:
        """SIGKILL engine node ``index``; the monotonic time (ns) once it is reaped."""
        node = self.nodes[index]
        node.process.kill()
        node.process.wait(timeout=30)
        return time.monotonic_ns()

    def leader(self) -> int:
        """The index of the node whose log says it acquired the UDB leader lease last."""
        best, best_at = 0, ""
        for index, node in enumerate(self.nodes):
            for line in node.log_path.read_text(errors="replace").splitlines():
                if "acquired udb postgres leader lease" in line and line > best_at:
                    best, best_at = index, line
        return best

    def close(self) -> None:
        for envoy in self.envoys:
            envoy.child.close()
        for node in self.nodes:  # the database is dropped next: no graceful stop
            if node.process.poll() is None:
                node.process.kill()
            node.process.wait(timeout=30)


def start_nodes(root: Path, postgres_url: str, nats_address: str, **pegboard: Any) -> list[Engine]:
    """Two engine nodes on one database and NATS, the first (the leader) started first."""
    nodes: list[Engine] = []
    sections = {"postgres": {"url": postgres_url}, "nats": {"addresses": [nats_address]}}
    try:
        for index in range(2):
            node = start_engine(root / f"node{index}", pegboard=dict(pegboard), **sections)
            nodes.append(node)
    except BaseException:
        for node in nodes:
            stop_engine(node)
        raise
    return nodes


@contextlib.asynccontextmanager
async def cluster(root: Path, thresholds: dict[str, int], runtime: EnvoyRuntime = PYRIVET) -> Any:
    """A running `Cluster` (no envoys yet; they will be ``runtime``'s) over a
    database and NATS of its own."""
    dsn = require_postgres()
    with database(dsn) as url, nats() as address:
        nodes = await asyncio.to_thread(start_nodes, root, url, address, **thresholds)
        namespace = await asyncio.to_thread(nodes[0].create_namespace)
        app_dir = root / "app"
        app_dir.mkdir()
        (app_dir / "app.py").write_text(LEDGER_APP)
        upstreams = [int(node.endpoint.rsplit(":", 1)[1]) for node in nodes]
        async with EngineBalancer(upstreams) as balancer:
            pool = f"py-{uuid.uuid4().hex[:10]}"
            built = Cluster(nodes, balancer, namespace, pool, app_dir, runtime)
            try:
                yield built
            finally:
                await asyncio.to_thread(built.close)
