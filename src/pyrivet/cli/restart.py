"""The in-place restart of ``pyrivet serve`` (SIGHUP): re-execute, keeping the sockets.

Runs in the main thread after `pyrivet.server.serve.serve` returned
`ServeResult.RESTART`, i.e. after every actor went to sleep and storage was closed
(the data directory's lock is free). The process replaces itself with
``sys.executable`` and its original command line (``sys.orig_argv``), so new code on
disk is picked up, the PID stays the same (a supervisor sees no exit) and the
listening sockets, made inheritable, stay open throughout: clients connecting during
the restart wait in the backlog. ``PYRIVET_LISTEN_FDS``/``PYRIVET_LISTEN_PID`` tell
the new process which descriptors to serve (see `pyrivet.server.listeners`).

If the exec fails, `reexec` raises `OSError` and the caller exits with status 1.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import NoReturn

from ..server.listeners import inherit_env

__all__ = ["reexec"]


def reexec(sockets: list[socket.socket]) -> NoReturn:
    """Replace this process with a fresh ``pyrivet serve`` serving ``sockets``.

    Raises:
        OSError: the interpreter could not be executed (nothing was replaced).
    """
    for sock in sockets:
        sock.set_inheritable(True)
    env = inherit_env(sockets, os.environ)
    # An ignored signal stays ignored across exec: a SIGHUP arriving before the new
    # server installs its handler is dropped instead of killing the process.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
