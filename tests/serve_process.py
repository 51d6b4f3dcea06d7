"""``pyrivet serve`` (or any other server, `ChildProcess`) in a subprocess, with
bounded waits on what it prints, and `run_child_and_kill` for the SIGKILL tests
(tests/ is on ``sys.path``: `from serve_process import ServeProcess`)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: The app every restart test serves: a counter whose on_sleep/on_wake count.
APP = """
from pyrivet import Registry, actor

counter = actor("counter", state={"count": 0, "slept": 0, "woke": 0})

@counter.on_wake
def on_wake(c):
    c.state["woke"] += 1

@counter.on_sleep
def on_sleep(c):
    c.state["slept"] += 1

@counter.action
def increment(c, amount=1):
    c.state["count"] += amount
    c.broadcast("count", c.state["count"])
    return c.state["count"]

@counter.action
def info(c):
    return dict(c.state)

registry = Registry([counter])
"""

START_TIMEOUT = 20.0

_ACTIVATE = """
import os, sys
os.dup2(int(sys.argv[1]), 3)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="web")
os.execv(sys.argv[2], sys.argv[2:])
"""


class ChildProcess:
    """One server process (``command`` in ``cwd``); its stderr is read on a thread,
    its stdout discarded. ``name`` says which server in a failure message."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        cwd: Path,
        *,
        pass_fds: Sequence[int] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=tuple(pass_fds),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = START_TIMEOUT) -> str:
        """The next stderr line satisfying ``predicate``; AssertionError if none comes."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self._queue.put(None)
                break
            if predicate(line):
                return line
        raise AssertionError(f"{self.name} never printed the line awaited:\n{self.output()}")

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float = 30) -> int:
        status = self.process.wait(timeout=timeout)
        self._reader.join(5)
        return status

    def output(self) -> str:
        return "\n".join(self.lines) or "(no output)"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._reader.join(5)
        if self.process.stderr is not None:
            self.process.stderr.close()


class ServeProcess(ChildProcess):
    """One ``pyrivet serve app:registry`` process in ``app_dir``."""

    def __init__(
        self,
        app_dir: Path,
        args: Sequence[str],
        *,
        pass_fds: Sequence[int] = (),
        env: dict[str, str] | None = None,
        activate_fd: int | None = None,
    ) -> None:
        command = [sys.executable, "-m", "pyrivet", "serve", "app:registry", *args]
        if activate_fd is not None:
            # Do what systemd does for socket activation: the socket on fd 3 and
            # LISTEN_PID set to the pid that then becomes pyrivet (exec keeps it).
            command = [sys.executable, "-c", _ACTIVATE, str(activate_fd), *command]
            pass_fds = (*pass_fds, activate_fd)
        super().__init__("pyrivet serve", command, app_dir, pass_fds=pass_fds, env=env)

    def wait_serving(self) -> int:
        """Wait for the "serving" line; returns the port."""
        line = self.wait_line(lambda s: "pyrivet: serving" in s)
        return int(line.split("http://127.0.0.1:")[1].split()[0])


def run_child_and_kill(code: str, data_dir: Path, acks_before_kill: int) -> dict[int, set[str]]:
    """Run ``python -c code data_dir`` and SIGKILL it after ``acks_before_kill`` lines.

    The child prints ``ack ROOM OP`` once each write is acknowledged; returns the
    acknowledged ops by room.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: dict[int, set[str]] = {}
    count = 0
    assert child.stdout is not None
    try:
        for line in child.stdout:
            _, room, op = line.split()
            acked.setdefault(int(room), set()).add(op)
            count += 1
            if count == acks_before_kill:
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.kill()
        _, stderr = child.communicate(timeout=30)
    assert count == acks_before_kill, f"child stopped early: {stderr}"
    return acked
