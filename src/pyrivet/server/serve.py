"""Running the app on uvicorn, with a graceful stop on SIGTERM/SIGINT (needs ``pyrivet[server]``).

```python
await serve(registry, host="127.0.0.1", port=6420, data_dir=".pyrivet")
```

Order of a stop (first SIGTERM or SIGINT, or SIGHUP with ``allow_restart``; a second
SIGINT forces it):

1. uvicorn stops accepting connections (a socket passed in ``sockets`` stays open:
   new connections wait in its backlog for whoever serves it next);
2. every ``connect`` WebSocket closes with 1012 ``ws.going_away`` once its in-flight
   actions replied (RivetKit's client reconnects on that reason); idle keep-alive
   connections close;
3. in-flight HTTP requests finish; steps 2 and 3 together get at most
   ``grace_period`` seconds (then what is left is cancelled or closed);
4. the runtime puts every actor to sleep: ``on_sleep`` runs, state is committed and
   storage is closed (the data directory's lock is released);
5. `serve` returns `ServeResult.STOPPED`, or `ServeResult.RESTART` after SIGHUP, so
   the caller decides what follows (``pyrivet serve`` re-executes itself on RESTART;
   uvicorn's own runner would re-raise the signal instead, exit status 143).

WebSocket keepalive: uvicorn pings every ``ws_ping_interval`` seconds and closes a
socket whose peer does not answer within ``ws_ping_timeout`` (RivetKit's protocol has
no ping of its own), so idle connections stay up behind proxies and dead peers are
detected.

WebSocket compression (permessage-deflate) is off unless ``ws_compression=True``:
actor messages are small, and each compressed connection costs a zlib context on both
sides (~60 KiB of server memory per idle connection) and CPU on every frame. A client
that offers it (the official and the pyrivet clients do) simply gets uncompressed
frames.

WebSockets are served by uvicorn's websockets-sansio protocol (what its ``auto`` picks
when ``websockets`` is installed) extended to write the frames a connection has queued
together (an action's event and reply) in one system call: see
`pyrivet.server._uvicorn_ws`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import os
import signal
import socket
import threading
from collections.abc import Callable, Generator, Sequence
from types import FrameType
from typing import Any

import uvicorn

from .._runtime.registry import Registry
from .._runtime.runtime import Runtime
from ..storage import SQLiteDriver
from ._uvicorn_ws import BatchingWebSocketProtocol
from .app import PyrivetApp, create_app

__all__ = ["PyrivetServer", "ServeError", "ServeResult", "serve"]


class ServeError(Exception):
    """uvicorn could not start (the address is in use, ...); details are in its log."""


class ServeResult(enum.Enum):
    """Why `serve` returned."""

    #: SIGTERM, SIGINT or ``should_exit``: the caller should exit.
    STOPPED = "stopped"
    #: SIGHUP (with ``allow_restart``): the caller should start serving again.
    RESTART = "restart"


class PyrivetServer(uvicorn.Server):
    """`uvicorn.Server` that reports when it listens and exits cleanly on a signal.

    Args:
        config: the uvicorn configuration.
        handle_signals: install SIGINT/SIGTERM handlers (main thread only); tests that
            run a server inside their own event loop pass False.
        allow_restart: also handle SIGHUP, as a stop that sets ``restart_requested``.
        on_started: called with the server once it listens.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        handle_signals: bool = True,
        allow_restart: bool = False,
        on_started: Callable[[PyrivetServer], Any] | None = None,
    ) -> None:
        super().__init__(config)
        self._handle_signals = handle_signals
        self._signals = (*_SIGNALS, signal.SIGHUP) if allow_restart else _SIGNALS
        self._on_started = on_started
        #: Set once the server listens (or failed to start: check ``started``).
        self.ready = asyncio.Event()
        #: Set when the graceful stop begins (no new connections from then on).
        self.stopping = asyncio.Event()
        #: Whether the stop was asked for by SIGHUP.
        self.restart_requested = False

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in self._signals}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGHUP:
            if self.should_exit:
                return  # already stopping: a restart on top of a stop is a stop
            self.restart_requested = True
            sig = signal.SIGTERM  # uvicorn's handler knows only INT/TERM
        self.handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()
        if self.started and self._on_started is not None:
            self._on_started(self)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.stopping.set()
        # Stop accepting before the WebSockets close, so their immediate reconnect
        # waits in the backlog for the next server instead of reaching this one.
        for server in self.servers:
            server.close()
        app = self.config.app
        grace = self.config.timeout_graceful_shutdown
        if isinstance(app, PyrivetApp) and not self.force_exit:
            loop = asyncio.get_running_loop()
            began = loop.time()
            await app.go_away(float(30 if grace is None else grace))
            if grace is not None:
                # One grace period for the whole stop, not one per kind of request.
                left = grace - (loop.time() - began)
                self.config.timeout_graceful_shutdown = max(0, math.ceil(left))
        await super().shutdown(sockets=sockets)

    @property
    def port(self) -> int:
        """The port it listens on (the real one when configured with port 0)."""
        for server in self.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("the server is not listening")


_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


async def serve(
    target: Registry | Runtime,
    *,
    host: str = "127.0.0.1",
    port: int = 6420,
    sockets: Sequence[socket.socket] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    log_level: str = "info",
    grace_period: float = 30.0,
    ws_ping_interval: float = 20.0,
    ws_ping_timeout: float = 20.0,
    ws_compression: bool = False,
    on_started: Callable[[PyrivetServer], Any] | None = None,
    handle_signals: bool = True,
    allow_restart: bool = False,
    configure_logging: bool = True,
    inspector_token: str | None = None,
) -> ServeResult:
    """Serve ``target`` until SIGTERM/SIGINT (or ``should_exit``), then stop gracefully.

    A registry gets a runtime on the embedded SQLite driver in ``data_dir``
    (``./.pyrivet`` by default), started before listening and closed (every actor
    asleep, state committed, storage closed) after the server stopped. A runtime
    passed in is served as it is and not closed.

    ``sockets`` are listening sockets to serve instead of binding ``host:port``;
    uvicorn gets duplicates, so they are still open (and still queue connections)
    when `serve` returns: the caller owns them. ``on_started`` is called with the
    `PyrivetServer` once it listens; ``handle_signals=False`` leaves signal handling
    to the caller (stop by setting ``server.should_exit``); ``allow_restart`` makes
    SIGHUP a stop that returns `ServeResult.RESTART`; ``configure_logging=False``
    keeps uvicorn from installing its logging configuration; ``ws_compression``
    accepts permessage-deflate (see the module docstring); ``inspector_token`` turns on
    the ``/inspector`` routes (default: ``PYRIVET_INSPECTOR_TOKEN``; see `create_app`).

    Raises:
        DataDirLockedError: another process uses ``data_dir``.
        ServeError: uvicorn could not start (e.g. the port is in use).
    """
    owned = isinstance(target, Registry)
    runtime = target.runtime(data_dir=data_dir) if isinstance(target, Registry) else target
    if owned and isinstance(runtime.storage, SQLiteDriver):
        # Opened once and kept open: its first ~1,000 commits then overwrite the WAL
        # instead of growing it (an fsync each that waits for the filesystem journal).
        runtime.storage.wal_prefill = True
    where = f"{host}:{port}" if sockets is None else "the sockets given"
    if owned:
        await runtime.start()
    try:
        config = uvicorn.Config(
            create_app(runtime, inspector_token=inspector_token),
            host=host,
            port=port,
            log_level=log_level,
            log_config=uvicorn.config.LOGGING_CONFIG if configure_logging else None,
            lifespan="off",
            # uvicorn's websockets-sansio protocol, writing frames queued together at once.
            ws=BatchingWebSocketProtocol,
            ws_ping_interval=ws_ping_interval,
            ws_ping_timeout=ws_ping_timeout,
            ws_per_message_deflate=ws_compression,
            timeout_graceful_shutdown=math.ceil(grace_period),
        )
        server = PyrivetServer(
            config,
            handle_signals=handle_signals,
            allow_restart=allow_restart,
            on_started=on_started,
        )
        # uvicorn closes what it serves when it stops: give it duplicates.
        duplicates = None if sockets is None else [_duplicate(sock) for sock in sockets]
        try:
            await server.serve(sockets=duplicates)
        except SystemExit:
            # uvicorn exits the process when it cannot bind; stop cleanly instead.
            raise ServeError(f"could not listen on {where}; see the log above") from None
        finally:
            for dup in duplicates or []:
                dup.close()
        if not server.started:
            raise ServeError(f"could not start serving on {where}; see the log above")
    finally:
        if owned:
            await runtime.aclose()
    return ServeResult.RESTART if server.restart_requested else ServeResult.STOPPED


def _duplicate(sock: socket.socket) -> socket.socket:
    """A non-inheritable duplicate of ``sock`` (the family and type are detected)."""
    return socket.socket(fileno=os.dup(sock.fileno()))
