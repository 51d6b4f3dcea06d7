"""``pyrivet serve`` restarts without closing its port: SIGHUP in place, ``--fd`` and
systemd socket activation (``LISTEN_FDS``), and the errors for a bad descriptor.

Real subprocesses on real sockets; every wait is on a printed line or an exit, with
a deadline.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_process import APP, ServeProcess

pytestmark = pytest.mark.slow

ACTION = "/gateway/counter/action/{}?rvt-method=getOrCreate&rvt-key=k"
HEADERS = {"x-rivet-encoding": "json"}


def call(port: int, action: str, *args: Any) -> Any:
    body = ('{"args":[' + ",".join(str(a) for a in args) + "]}").encode()
    reply = httpx.post(
        f"http://127.0.0.1:{port}" + ACTION.format(action),
        content=body,
        headers=HEADERS,
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["output"]


def lock_is_held(data_dir: Path) -> bool:
    """Whether some open file description holds the data directory's flock."""
    fd = os.open(data_dir / "LOCK", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


@contextlib.contextmanager
def serving(app_dir: Path, *args: str, **kwargs: Any) -> Iterator[ServeProcess]:
    process = ServeProcess(app_dir, [*args, "--log-level", "warning"], **kwargs)
    try:
        yield process
    finally:
        process.close()


@contextlib.contextmanager
def held_listener() -> Iterator[socket.socket]:
    """A listening loopback socket this test holds, as systemd would."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        yield listener
    finally:
        listener.close()


def test_sighup_restarts_in_place_with_state_intact(app_dir: Path) -> None:
    data_dir = app_dir / "data"
    with serving(app_dir, "--port", "0", "--data-dir", str(data_dir)) as server:
        port = server.wait_serving()
        pid = server.process.pid
        assert call(port, "increment", 5) == 5
        assert lock_is_held(data_dir)
        assert (data_dir / "LOCK").read_text().strip() == str(pid)

        server.signal(signal.SIGHUP)
        # Between the two servers: every actor asleep, storage closed, then exec.
        server.wait_line(lambda s: "every actor is asleep" in s)
        server.wait_line(lambda s: f"restarting in place (pid {pid})" in s)
        assert server.wait_serving() == port  # the same socket, never closed
        assert server.process.poll() is None and server.process.pid == pid

        # The new process took the lock again (so the old one had released it).
        assert lock_is_held(data_dir)
        assert (data_dir / "LOCK").read_text().strip() == str(pid)
        state = call(port, "info")
        assert state == {"count": 5, "slept": 1, "woke": 2}  # slept once, woke anew
        assert call(port, "increment", 1) == 6

        # A second restart works the same way; SIGTERM still stops with 0.
        server.signal(signal.SIGHUP)
        server.wait_line(lambda s: "restarting in place" in s)
        assert server.wait_serving() == port
        assert call(port, "info")["slept"] == 2
        server.signal(signal.SIGTERM)
        assert server.wait_exit() == 0
    assert not lock_is_held(data_dir)


def test_sighup_keeps_a_connection_waiting_in_the_backlog(app_dir: Path) -> None:
    """A connection made while no server runs is answered by the next one."""
    data_dir = app_dir / "data"
    with serving(app_dir, "--port", "0", "--data-dir", str(data_dir)) as server:
        port = server.wait_serving()
        assert call(port, "increment", 2) == 2
        server.signal(signal.SIGHUP)
        server.wait_line(lambda s: "restarting in place" in s)
        # The old server is gone and the new one may still be importing: the
        # kernel accepts this connection into the backlog all the same.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as early:
            early.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := early.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply
        server.wait_serving()
        assert call(port, "increment", 1) == 3


def test_fd_serves_an_inherited_socket_across_stop_and_start(app_dir: Path) -> None:
    data_dir = app_dir / "data"
    with held_listener() as listener:
        port = listener.getsockname()[1]
        fd = listener.fileno()
        args = ("--fd", str(fd), "--data-dir", str(data_dir))
        with serving(app_dir, *args, pass_fds=[fd]) as first:
            assert first.wait_serving() == port
            assert call(port, "increment", 4) == 4
            first.signal(signal.SIGTERM)
            assert first.wait_exit() == 0
        # No server runs; the port is still open because this test holds it.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as waiting:
            waiting.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            with serving(app_dir, *args, pass_fds=[fd]) as second:
                assert second.wait_serving() == port
                assert waiting.recv(64).startswith(b"HTTP/1.1 200")
                assert call(port, "info") == {"count": 4, "slept": 1, "woke": 2}
                second.signal(signal.SIGTERM)
                assert second.wait_exit() == 0


def test_systemd_socket_activation(app_dir: Path) -> None:
    data_dir = app_dir / "data"
    with held_listener() as listener:
        port = listener.getsockname()[1]
        fd = listener.fileno()
        with serving(app_dir, "--data-dir", str(data_dir), activate_fd=fd) as server:
            assert server.wait_serving() == port
            assert call(port, "increment", 7) == 7
            # Restarts in place on the activated socket, too.
            server.signal(signal.SIGHUP)
            server.wait_line(lambda s: "restarting in place" in s)
            assert server.wait_serving() == port
            assert call(port, "increment", 1) == 8
            server.signal(signal.SIGTERM)
            assert server.wait_exit() == 0


def test_listen_fds_for_another_process_is_ignored(app_dir: Path) -> None:
    """LISTEN_PID names someone else (inherited by mistake): bind --port instead."""
    data_dir = app_dir / "data"
    env = {"LISTEN_FDS": "1", "LISTEN_PID": "1"}
    with serving(app_dir, "--port", "0", "--data-dir", str(data_dir), env=env) as server:
        port = server.wait_serving()
        assert call(port, "increment", 1) == 1


def run_serve(app_dir: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyrivet", "serve", "app:registry", *args],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=30,
        **kwargs,
    )


def test_fd_that_is_not_a_listening_socket_is_refused(app_dir: Path) -> None:
    data = str(app_dir / "data")
    with open(app_dir / "app.py") as regular:
        fd = regular.fileno()
        result = run_serve(app_dir, "--fd", str(fd), "--data-dir", data, pass_fds=[fd])
    assert result.returncode == 1
    assert f"pyrivet: file descriptor {fd} is not a socket" in result.stderr

    with socket.socket() as unbound:
        fd = unbound.fileno()
        result = run_serve(app_dir, "--fd", str(fd), "--data-dir", data, pass_fds=[fd])
    assert result.returncode == 1
    assert f"file descriptor {fd} is a socket that is not listening" in result.stderr

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        fd = udp.fileno()
        result = run_serve(app_dir, "--fd", str(fd), "--data-dir", data, pass_fds=[fd])
    assert result.returncode == 1
    assert f"file descriptor {fd} is not a stream" in result.stderr

    result = run_serve(app_dir, "--fd", "97", "--data-dir", data)
    assert result.returncode == 1
    assert "file descriptor 97 is not open" in result.stderr

    result = run_serve(app_dir, "--fd", "three", "--data-dir", data)
    assert result.returncode == 2  # a usage error, from argparse
    assert "--fd" in result.stderr


def test_bad_listen_fds_is_refused(app_dir: Path) -> None:
    result = run_serve(
        app_dir, "--data-dir", str(app_dir / "data"), env={**os.environ, "LISTEN_FDS": "x"}
    )
    assert result.returncode == 1
    assert "LISTEN_FDS='x' is not a number" in result.stderr


def test_port_in_use_is_reported(app_dir: Path) -> None:
    with held_listener() as listener:
        port = listener.getsockname()[1]
        result = run_serve(app_dir, "--port", str(port), "--data-dir", str(app_dir / "d"))
    assert result.returncode == 1
    assert f"could not listen on 127.0.0.1:{port}" in result.stderr
    assert os.strerror(errno.EADDRINUSE) in result.stderr
