"""A real ``rivet-engine`` 2.3.19 for the envoy tests: single node, file-system backend.

The binary comes from the committed package-lock of tests/conformance/js (npm
``@rivetkit/engine-cli-linux-x64-musl``, a dependency of ``rivetkit``). Without it the
tests skip, unless ``PYRIVET_REQUIRE_ENGINE=1`` (set by CI), which makes the skip a
failure. Each test gets a fresh engine (about 3 s), or a module shares one engine and
one envoy (`module_engine`). The engines run with the workflow worker's CPU load
shedding turned off (``runtime.worker_cpu_max``, below): with it, a machine busy with
other work made actor creation stall for 15 s and more.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENGINE_BINARY = (
    Path(__file__).resolve().parents[1]
    / "conformance/js/node_modules/@rivetkit/engine-cli-linux-x64-musl/rivet-engine"
)
TOKEN = "pyrivet-test-token"
START_TIMEOUT = 60.0
#: ``runtime.worker_cpu_max`` for test engines: far above any machine's cores.
WORKER_CPU_MAX = 1_000_000


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: each socket stays bound until all are picked, so
    the kernel cannot hand the same just-released port out twice (an engine given one
    port for two of its listeners fails to start: "Address in use")."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


@dataclass
class Engine:
    """A running engine: its gateway/API URL and the admin token."""

    endpoint: str
    token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def api(self, method: str, path: str, body: Any = None, namespace: str = "default") -> Any:
        """One call of the engine's HTTP API (``?namespace=...`` is added)."""
        sep = "&" if "?" in path else "?"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.endpoint}{path}{sep}namespace={namespace}", data=data, method=method
        )
        request.add_header("authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def create_actor(self, name: str, key: str, pool: str, namespace: str) -> str:
        """Create an actor for ``pool`` through the API; its id."""
        body = {"name": name, "key": key, "runner_name_selector": pool, "crash_policy": "sleep"}
        actor_id: str = self.api("POST", "/actors", body, namespace)["actor"]["actor_id"]
        return actor_id

    def create_namespace(self) -> str:
        """A new namespace of the engine; its name."""
        name = f"ns-{uuid.uuid4().hex[:12]}"
        self.api("POST", "/namespaces", {"name": name, "display_name": name})
        return name

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_engine(data_dir: Path, **sections: Any) -> Engine:
    """Start an engine on free ports over ``data_dir``; wait until it answers.

    ``sections`` are top-level config sections added or replaced (``pegboard``
    thresholds; ``postgres`` and ``nats`` for a cluster node, which then has no
    ``file_system`` backend).
    """
    guard, api_peer, metrics = free_ports(3)
    config: dict[str, Any] = {
        # Messages to clients leave at once (no Nagle wait for the client's delayed
        # ACK, which cost a subscribed caller ~40 ms per call): see docs/engine.md.
        "guard": {"host": "127.0.0.1", "port": guard, "tcp_nodelay": True},
        "api_peer": {"host": "127.0.0.1", "port": api_peer},
        "metrics": {"host": "127.0.0.1", "port": metrics},
        "file_system": {"path": str(data_dir / "db")},
        "telemetry": {"enabled": False},
        "auth": {"admin_token": TOKEN},
        # The engine's workflow worker sheds load by CPU: above 70 % it pulls fewer
        # ready workflows, down to 5 % of them at 90 %. It reads its cgroup's usage,
        # which on cgroup v1 without a CPU limit is the whole host's, so on a busy
        # machine (CI, other tests) actor creation stalls for 15 s and more
        # (`route_resolve_query_timeout`). A high `worker_cpu_max` (millicores) turns
        # the shedding off; see docs/engine.md.
        "runtime": {"worker_cpu_max": WORKER_CPU_MAX},
    }
    if "postgres" in sections:
        del config["file_system"]
    config.update(sections)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "config.json").write_text(json.dumps(config))
    log_path = data_dir / "engine.log"
    engine = Engine(f"http://127.0.0.1:{guard}", TOKEN, _launch(data_dir), log_path)
    _wait_answering(engine)
    return engine


def restart_engine(engine: Engine) -> None:
    """Stop the engine (SIGTERM) and start it again on the same ports and data."""
    stop_engine(engine)
    engine.process = _launch(engine.log_path.parent)
    _wait_answering(engine)


def _launch(data_dir: Path) -> subprocess.Popen[bytes]:
    with (data_dir / "engine.log").open("ab") as log_file:
        return subprocess.Popen(
            [str(ENGINE_BINARY), "--config", str(data_dir / "config.json"), "start"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
        )


def _wait_answering(engine: Engine) -> None:
    process = engine.process
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"rivet-engine exited at start:\n{engine.log_tail()}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            meta = engine.api("GET", "/metadata")
            if meta.get("version"):
                return
        if time.monotonic() > deadline:
            stop_engine(engine)
            raise RuntimeError(f"rivet-engine did not answer in {START_TIMEOUT} s")
        time.sleep(0.1)


def stop_engine(engine: Engine) -> None:
    engine.process.terminate()
    try:
        engine.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        engine.process.kill()
        engine.process.wait()


def _engine(factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if not ENGINE_BINARY.is_file():
        reason = (
            f"envoy tests need the rivet-engine binary at {ENGINE_BINARY} "
            "(run `npm install` in tests/conformance/js)"
        )
        if os.environ.get("PYRIVET_REQUIRE_ENGINE") == "1":
            pytest.fail(f"{reason}; PYRIVET_REQUIRE_ENGINE=1 forbids skipping")
        pytest.skip(reason)
    engine = start_engine(factory.mktemp("rivet-engine"))
    try:
        yield engine
    finally:
        stop_engine(engine)


@pytest.fixture
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A fresh real engine for this test (skips without the binary, unless required)."""
    yield from _engine(tmp_path_factory)


@pytest.fixture(scope="module")
def module_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One real engine for a module whose tests share one envoy."""
    yield from _engine(tmp_path_factory)


@pytest.fixture
def pool() -> str:
    """A pool name of this test's own."""
    return f"py-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def namespace(engine: Engine) -> str:
    """A namespace of this test's own."""
    return engine.create_namespace()
