"""``pyrivet serve app:registry --engine URL``: host the registry's actors for a Rivet Engine.

Envoy mode binds no port: clients reach the actors through the engine's gateway, which
tunnels their HTTP requests and WebSockets to this process (see `pyrivet.engine`). The
actors' data lives in the engine's per-actor KV (``--local-storage``: in ``--data-dir``
as in standalone mode; ``--local-actor-db``: ``c.db`` files in ``--data-dir``).

Runs in the main thread on a fresh event loop. SIGTERM/SIGINT stop it: the engine is
told the envoy is stopping, every actor is put to sleep (state committed) and the
socket is closed; exit status 0. A refused protocol version, an engine still
unreachable after ``--engine-give-up`` seconds, or a module that does not load give
one line on stderr and exit status 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from ..client import Client
from ..engine._errors import EngineError
from ..errors import StorageError
from ..server.app import create_app
from .serve_command import LoadError, load_registry, run_loop

if TYPE_CHECKING:
    from ..engine._envoy import EnvoyConfig

__all__ = ["EngineOptions", "engine_options_from_env", "run_envoy"]

log = logging.getLogger("pyrivet.cli")


@dataclass(frozen=True)
class EngineOptions:
    """Where the engine is and which pool this envoy serves (CLI flags, else env)."""

    endpoint: str
    namespace: str = "default"
    pool: str = "default"
    token: str | None = None
    give_up_after: float | None = None
    #: Keep the actors' data in the data directory (SQLite) instead of the engine.
    local_storage: bool = False
    #: With the engine's storage, keep c.db files in the data directory.
    local_actor_db: bool = False


def engine_options_from_env(
    endpoint: str | None,
    namespace: str | None,
    pool: str | None,
    token: str | None,
    give_up_after: float | None,
    *,
    local_storage: bool = False,
    local_actor_db: bool = False,
) -> EngineOptions | None:
    """Flags win over ``RIVET_ENDPOINT`` / ``RIVET_NAMESPACE`` / ``RIVET_POOL`` /
    ``RIVET_TOKEN``; None when no engine endpoint is given at all (standalone mode)."""
    endpoint = endpoint or os.environ.get("RIVET_ENDPOINT") or None
    if endpoint is None:
        return None
    return EngineOptions(
        endpoint,
        namespace or os.environ.get("RIVET_NAMESPACE") or "default",
        pool or os.environ.get("RIVET_POOL") or "default",
        token or os.environ.get("RIVET_TOKEN") or None,
        give_up_after,
        local_storage,
        local_actor_db,
    )


def run_envoy(spec: str, options: EngineOptions, *, data_dir: str, log_level: str) -> int:
    """Host ``spec``'s actors for the engine until SIGTERM/SIGINT; the exit status."""
    logging.basicConfig(
        level=log_level.upper(), format="%(levelname)-9s %(name)s: %(message)s", force=False
    )
    try:
        from ..engine.serve import serve_envoy
    except ImportError as exc:
        print(
            f"pyrivet: envoy mode needs websockets ({exc}); install pyrivet[server]",
            file=sys.stderr,
        )
        return 1
    try:
        registry = load_registry(spec)
    except LoadError as exc:
        print(f"pyrivet: {exc}", file=sys.stderr)
        return 1

    def ready() -> None:
        where = (
            f"data in {os.path.abspath(data_dir)}"
            if options.local_storage
            else "data in the engine's KV"
        )
        print(
            f"pyrivet: hosting {spec} for the Rivet Engine at {options.endpoint} "
            f"(namespace {options.namespace}, pool {options.pool}, pid {os.getpid()}, "
            f"{where})",
            file=sys.stderr,
            flush=True,
        )

    try:
        run_loop(
            serve_envoy(
                registry,
                # Replies ahead of their events: see `create_app`'s reply_before_events.
                partial(create_app, reply_before_events=True),
                endpoint=options.endpoint,
                namespace=options.namespace,
                pool=options.pool,
                token=options.token,
                give_up_after=options.give_up_after,
                data_dir=data_dir,
                storage="local" if options.local_storage else "engine",
                local_actor_db=options.local_actor_db,
                on_ready=ready,
                install_signals=_install_signals,
                make_client=_gateway_client,
            )
        )
    except EngineError as exc:
        print(f"pyrivet: {exc}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"pyrivet: cannot open the data directory {data_dir!r}: {exc}", file=sys.stderr)
        return 1
    print("pyrivet: stopped; every actor is asleep and its state committed", file=sys.stderr)
    return 0


def _install_signals(stop: Callable[[], None]) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)


def _gateway_client(config: EnvoyConfig) -> Client:
    """The client ``c.client()`` returns in envoy mode: one of the engine's gateway."""
    return Client(
        config.endpoint, namespace=config.namespace, pool_name=config.pool, token=config.token
    )
