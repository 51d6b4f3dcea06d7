"""Listening sockets that outlive the process serving them.

`pyrivet serve` never lets uvicorn bind: it binds (or inherits) the listening socket
itself, keeps it for the life of the process and hands uvicorn a duplicate. When the
server stops, uvicorn closes only its duplicate, so the port stays open for as long
as someone holds the socket: the process re-executing itself on SIGHUP, or systemd
(socket activation) between a stop and a start. A client connecting meanwhile is
accepted by the kernel into the listen backlog and answered by the next server;
RivetKit's JavaScript client does not retry a refused connection, but it waits on a
queued one.

Where a socket comes from (first match wins), see `listening_sockets`:

1. ``PYRIVET_LISTEN_FDS`` with ``PYRIVET_LISTEN_PID`` equal to this process: set by
   `pyrivet serve` itself before it re-executes (the PID does not change);
2. ``--fd N``: a listening socket the parent passed in;
3. ``LISTEN_FDS`` / ``LISTEN_PID`` (systemd socket activation, ``sd_listen_fds``):
   file descriptors 3 .. 3+LISTEN_FDS-1;
4. otherwise a new TCP socket bound to ``host:port``.

Everything here runs in the main thread before the event loop starts. Every error is
a `ListenError` whose message names the descriptor or address and what is wrong.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import Mapping, MutableMapping
from typing import Final

__all__ = [
    "INHERITED_FDS_ENV",
    "INHERITED_PID_ENV",
    "ListenError",
    "adopt_fd",
    "bind_tcp",
    "describe",
    "inherit_env",
    "listening_sockets",
    "systemd_fds",
]

#: Descriptors handed from one `pyrivet serve` to the one it re-executes.
INHERITED_FDS_ENV: Final = "PYRIVET_LISTEN_FDS"
#: The PID those descriptors are meant for (so a child process ignores them).
INHERITED_PID_ENV: Final = "PYRIVET_LISTEN_PID"
#: The first descriptor systemd passes (``SD_LISTEN_FDS_START``).
SYSTEMD_FIRST_FD: Final = 3
#: Listen backlog of a socket we bind: connections queued while the server restarts.
BACKLOG: Final = 2048


class ListenError(Exception):
    """No usable listening socket: bad descriptor, bad environment, address in use."""


def bind_tcp(host: str, port: int, *, backlog: int = BACKLOG) -> socket.socket:
    """A new TCP socket listening on ``host:port`` (IPv6 when ``host`` has a colon).

    Raises:
        ListenError: the address cannot be bound (in use, not local, no permission).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as exc:
        raise ListenError(f"could not listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def adopt_fd(fd: int) -> socket.socket:
    """The listening stream socket open on descriptor ``fd`` (it becomes inheritable).

    Raises:
        ListenError: ``fd`` is not open, not a socket, not a stream socket, or not
            listening.
    """
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise ListenError(f"file descriptor {fd} is not open") from None
        raise ListenError(f"file descriptor {fd}: {exc.strerror or exc}") from None
    if not stat.S_ISSOCK(mode):
        raise ListenError(f"file descriptor {fd} is not a socket")
    sock = socket.socket(fileno=fd)
    try:
        if sock.type != socket.SOCK_STREAM:
            raise ListenError(f"file descriptor {fd} is not a stream (TCP or Unix) socket")
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise ListenError(f"file descriptor {fd} is a socket that is not listening")
    except BaseException:
        sock.detach()  # the descriptor stays the caller's
        raise
    sock.set_inheritable(True)
    return sock


def systemd_fds(environ: MutableMapping[str, str]) -> list[int]:
    """The descriptors systemd socket activation passed to this process ([] if none).

    Like ``sd_listen_fds(1)``: the variables are removed from ``environ`` so that
    processes started by actors do not take them for theirs.

    Raises:
        ListenError: ``LISTEN_FDS`` or ``LISTEN_PID`` is not a number.
    """
    count, pid = environ.pop("LISTEN_FDS", None), environ.pop("LISTEN_PID", None)
    environ.pop("LISTEN_FDNAMES", None)
    if count is None:
        return []
    if pid is not None and _number("LISTEN_PID", pid) != os.getpid():
        return []
    n = _number("LISTEN_FDS", count)
    return list(range(SYSTEMD_FIRST_FD, SYSTEMD_FIRST_FD + n))


def _inherited_fds(environ: MutableMapping[str, str]) -> list[int]:
    value, pid = environ.pop(INHERITED_FDS_ENV, None), environ.pop(INHERITED_PID_ENV, None)
    if value is None or pid is None or _number(INHERITED_PID_ENV, pid) != os.getpid():
        return []
    return [_number(INHERITED_FDS_ENV, part) for part in value.split(",") if part]


def _number(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ListenError(f"{name}={value!r} is not a number") from None


def listening_sockets(
    *,
    host: str,
    port: int,
    fd: int | None,
    environ: MutableMapping[str, str] | None = None,
) -> list[socket.socket]:
    """The sockets to serve, in the order of the module doc; all inheritable.

    Reads (and removes) the ``PYRIVET_LISTEN_*`` and ``LISTEN_*`` variables of
    ``environ`` (`os.environ` by default).

    Raises:
        ListenError: see `adopt_fd`, `systemd_fds` and `bind_tcp`.
    """
    env = os.environ if environ is None else environ
    inherited = _inherited_fds(env)
    activated = systemd_fds(env)
    if inherited:
        return [adopt_fd(n) for n in inherited]
    if fd is not None:
        return [adopt_fd(fd)]
    if activated:
        return [adopt_fd(n) for n in activated]
    return [bind_tcp(host, port)]


def inherit_env(sockets: list[socket.socket], environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` plus what tells the re-executed process to serve ``sockets``."""
    return {
        **environ,
        INHERITED_FDS_ENV: ",".join(str(sock.fileno()) for sock in sockets),
        INHERITED_PID_ENV: str(os.getpid()),
    }


def describe(sock: socket.socket) -> str:
    """Where ``sock`` listens, as a URL: ``http://127.0.0.1:6420``, ``unix:/run/x``."""
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{address.decode() if isinstance(address, bytes) else address}"
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"
