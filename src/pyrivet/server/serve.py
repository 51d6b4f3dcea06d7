"""Running the app on uvicorn, with a graceful stop on SIGTERM/SIGINT (needs ``pyrivet[server]``).

```python
await serve(registry, host="127.0.0.1", port=6420, data_dir=".pyrivet")
```

Order of a stop (first SIGTERM or SIGINT; a second SIGINT forces it):

1. uvicorn stops accepting connections;
2. every ``connect`` WebSocket closes with 1012 ``ws.going_away`` once its in-flight
   actions replied (RivetKit's client parses the reason and reconnects); idle
   keep-alive connections close;
3. in-flight HTTP requests finish, for at most ``grace_period`` seconds (then they
   are cancelled);
4. the runtime puts every actor to sleep: ``on_sleep`` runs and state is committed;
5. `serve` returns normally, so the process exits 0 (uvicorn's own runner re-raises
   the signal after stopping, which would make the exit status 143).

WebSocket keepalive: uvicorn pings every ``ws_ping_interval`` seconds and closes a
socket whose peer does not answer within ``ws_ping_timeout`` (RivetKit's protocol has
no ping of its own), so idle connections stay up behind proxies and dead peers are
detected.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import threading
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

import uvicorn

from .._runtime.registry import Registry
from .._runtime.runtime import Runtime
from .app import PyrivetApp, create_app

__all__ = ["PyrivetServer", "ServeError", "serve"]


class ServeError(Exception):
    """uvicorn could not start (the address is in use, ...); details are in its log."""


class PyrivetServer(uvicorn.Server):
    """`uvicorn.Server` that reports when it listens and exits cleanly on a signal.

    Args:
        config: the uvicorn configuration.
        handle_signals: install SIGINT/SIGTERM handlers (main thread only); tests that
            run a server inside their own event loop pass False.
        on_started: called with the server once it listens.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        handle_signals: bool = True,
        on_started: Callable[[PyrivetServer], Any] | None = None,
    ) -> None:
        super().__init__(config)
        self._handle_signals = handle_signals
        self._on_started = on_started
        #: Set once the server listens (or failed to start: check ``started``).
        self.ready = asyncio.Event()
        #: Set when the graceful stop begins (no new connections from then on).
        self.stopping = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
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
        # does not reach this server while it stops.
        for server in self.servers:
            server.close()
        app = self.config.app
        if isinstance(app, PyrivetApp) and not self.force_exit:
            await app.go_away(float(self.config.timeout_graceful_shutdown or 30))
        await super().shutdown(sockets=sockets)

    @property
    def port(self) -> int:
        """The port it listens on (the real one when configured with port 0)."""
        for server in self.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("the server is not listening")


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve(
    target: Registry | Runtime,
    *,
    host: str = "127.0.0.1",
    port: int = 6420,
    data_dir: str | os.PathLike[str] | None = None,
    log_level: str = "info",
    grace_period: float = 30.0,
    ws_ping_interval: float = 20.0,
    ws_ping_timeout: float = 20.0,
    on_started: Callable[[PyrivetServer], Any] | None = None,
    handle_signals: bool = True,
    configure_logging: bool = True,
) -> None:
    """Serve ``target`` until SIGTERM/SIGINT (or ``should_exit``), then stop gracefully.

    A registry gets a runtime on the embedded SQLite driver in ``data_dir``
    (``./.pyrivet`` by default), started before listening and closed (every actor
    asleep, state committed) after the server stopped. A runtime passed in is served
    as it is and not closed. ``on_started`` is called with the `PyrivetServer` once it
    listens; ``handle_signals=False`` leaves signal handling to the caller (stop by
    setting ``server.should_exit``); ``configure_logging=False`` keeps uvicorn from
    installing its logging configuration.

    Raises:
        DataDirLockedError: another process uses ``data_dir``.
        ServeError: uvicorn could not start (e.g. the port is in use).
    """
    owned = isinstance(target, Registry)
    runtime = target.runtime(data_dir=data_dir) if isinstance(target, Registry) else target
    if owned:
        await runtime.start()
    try:
        config = uvicorn.Config(
            create_app(runtime),
            host=host,
            port=port,
            log_level=log_level,
            log_config=uvicorn.config.LOGGING_CONFIG if configure_logging else None,
            lifespan="off",
            ws_ping_interval=ws_ping_interval,
            ws_ping_timeout=ws_ping_timeout,
            timeout_graceful_shutdown=math.ceil(grace_period),
        )
        server = PyrivetServer(config, handle_signals=handle_signals, on_started=on_started)
        try:
            await server.serve()
        except SystemExit:
            # uvicorn exits the process when it cannot bind; stop cleanly instead.
            raise ServeError(f"could not listen on {host}:{port}; see the log above") from None
        if not server.started:
            raise ServeError(f"could not start serving on {host}:{port}; see the log above")
    finally:
        if owned:
            await runtime.aclose()
