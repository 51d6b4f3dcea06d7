"""``pyrivet serve MODULE:ATTR``: load a Registry and serve it until a signal.

Runs in the main thread of the process: imports the user's module (with the current
directory on ``sys.path``, as ``python -m`` would), takes the listening sockets
(inherited ones or a new one, see `pyrivet.server.listeners`), then runs
`pyrivet.server.serve.serve` on a fresh event loop. SIGTERM/SIGINT stop it (exit 0);
SIGHUP stops it the same way and then re-executes the process in place with the
sockets still open (`pyrivet.cli.restart`). Errors loading the module, taking the
sockets or starting the server are printed as one line on stderr and give exit
status 1.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any, TypeVar

from .._runtime.registry import Registry
from .._util.logs import ActorTextFormatter, JsonFormatter
from .._util.words import a_or_an
from ..errors import DataDirLockedError, StorageError
from ..server.inspector.auth import TOKEN_ENV
from ..server.listeners import ListenError, describe, listening_sockets
from .restart import reexec

__all__ = ["load_registry", "run_serve"]

log = logging.getLogger("pyrivet.cli")

T = TypeVar("T")


class LoadError(Exception):
    """The ``MODULE:ATTR`` argument does not name a Registry."""


def load_registry(spec: str) -> Registry:
    """Import ``module:attr`` (``attr`` may be dotted) and return the Registry there.

    Raises:
        LoadError: malformed spec, a file path given instead of a module name, module
            not importable, attribute missing or not a Registry. The message says what
            to write instead.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise LoadError(f"expected MODULE:ATTR such as app:registry, got {spec!r}")
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        # Checked before importing: import_module("app.py") would run app.py and then
        # fail with "No module named 'app.py'", which does not say what to write.
        raise LoadError(
            f"{module_name!r} is a file path; give the module name instead: "
            f"pyrivet serve {_module_of_path(module_name)}:{attr} "
            "(run from the directory that holds it)"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise LoadError(
                f"cannot import module {module_name!r}: {exc} (looked in {os.getcwd()} "
                "and on sys.path; run pyrivet serve from the directory that holds it)"
            ) from exc
        raise
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise LoadError(
                f"module {module_name!r} has no attribute {attr!r}{_registries_hint(module)}"
            ) from None
    if not isinstance(value, Registry):
        raise LoadError(
            f"{spec} is {a_or_an(type(value).__name__)}, not a pyrivet Registry; "
            f"point at `registry = Registry([...])`{_registries_hint(module)}"
        )
    return value


def _module_of_path(path: str) -> str:
    """``app.py`` -> ``app``, ``pkg/app.py`` -> ``pkg.app``."""
    stem = path[:-3] if path.endswith(".py") else path
    parts = [p for p in stem.replace(os.sep, "/").split("/") if p and p != "."]
    return ".".join(parts) or "app"


def _registries_hint(module: ModuleType) -> str:
    """``"; its Registry: app:registry"`` naming the module's Registry objects, or ``""``."""
    names = sorted(k for k, v in vars(module).items() if isinstance(v, Registry))
    if not names:
        return f"; module {module.__name__!r} defines no Registry"
    specs = ", ".join(f"{module.__name__}:{name}" for name in names)
    return f"; Registry objects in it: {specs}"


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new event loop: uvloop's when it is installed
    (the ``server`` extra brings it; it roughly halves the event loop's own cost per
    request), else asyncio's. ``PYRIVET_LOOP=asyncio`` forces asyncio's loop."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if os.environ.get("PYRIVET_LOOP", "auto") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def inspector_setting(given: str | None) -> tuple[str, bool]:
    """(the inspector token to serve with, whether it was generated now).

    ``""`` (``--no-inspector``) turns it off; None takes ``PYRIVET_INSPECTOR_TOKEN`` or
    generates one, which goes into the environment so a SIGHUP restart keeps it.
    """
    if given is not None:
        return given, False
    token = os.environ.get(TOKEN_ENV)
    if token:
        return token, False
    token = secrets.token_urlsafe(24)
    os.environ[TOKEN_ENV] = token
    return token, True


def _configure_logging(log_level: str, log_format: str) -> None:
    """A stderr handler on the root logger (unless the app configured one already)."""
    root = logging.getLogger()
    if root.handlers:
        return
    root.setLevel(log_level.upper())
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ActorTextFormatter("%(levelname)-9s %(name)s: %(message)s"))
    root.addHandler(handler)


def run_serve(
    spec: str,
    *,
    host: str,
    port: int,
    data_dir: str,
    log_level: str,
    grace_period: float,
    fd: int | None = None,
    ws_compression: bool = False,
    log_format: str = "text",
    inspector_token: str | None = None,
) -> int:
    """Serve ``spec`` until SIGTERM/SIGINT; returns the exit status (SIGHUP re-execs).

    ``log_format``: ``"text"`` (lines, with ``[actor=… key=… id=…]`` on records about
    an actor) or ``"json"`` (one JSON object per line, uvicorn's records included).
    ``inspector_token``: None reads ``PYRIVET_INSPECTOR_TOKEN`` and generates a token
    when it is unset (printed with the page's URL once serving; kept in the environment
    so a SIGHUP restart keeps it); ``""`` turns the inspector off.
    """
    _configure_logging(log_level, log_format)
    # SIGHUP means "restart" once serving; until then (and while stopping, and across
    # the exec of a restart: an ignored signal stays ignored) it must not kill us.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        from ..server.serve import ServeError, ServeResult, serve
    except ImportError as exc:
        print(
            f"pyrivet: the server needs uvicorn ({exc}); install pyrivet[server]",
            file=sys.stderr,
        )
        return 1
    try:
        registry = load_registry(spec)
    except LoadError as exc:
        print(f"pyrivet: {exc}", file=sys.stderr)
        return 1

    try:
        sockets = listening_sockets(host=host, port=port, fd=fd)
    except ListenError as exc:
        print(f"pyrivet: {exc}", file=sys.stderr)
        return 1

    token, generated = inspector_setting(inspector_token)

    def started(server: Any) -> None:
        where = ", ".join(describe(sock) for sock in sockets)
        print(
            f"pyrivet: serving {spec} on {where} (pid {os.getpid()}, "
            f"data in {os.path.abspath(data_dir)})",
            file=sys.stderr,
            flush=True,
        )
        if token:
            page = f"{describe(sockets[0])}/ui"
            shown = f"{page}#token={token}" if generated else f"{page} (token as configured)"
            print(f"pyrivet: inspector at {shown}", file=sys.stderr, flush=True)

    try:
        result = run_loop(
            serve(
                registry,
                sockets=sockets,
                data_dir=data_dir,
                log_level=log_level,
                grace_period=grace_period,
                ws_compression=ws_compression,
                configure_logging=log_format == "text",
                on_started=started,
                inspector_token=token,
                allow_restart=True,
            )
        )
    except DataDirLockedError as exc:
        print(f"pyrivet: {exc}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"pyrivet: cannot open the data directory {data_dir!r}: {exc}", file=sys.stderr)
        return 1
    except ServeError as exc:
        print(f"pyrivet: {exc}", file=sys.stderr)
        return 1
    print("pyrivet: stopped; every actor is asleep and its state committed", file=sys.stderr)
    if result is ServeResult.RESTART:
        print(
            f"pyrivet: restarting in place (pid {os.getpid()}); the listening socket stays open",
            file=sys.stderr,
            flush=True,
        )
        try:
            reexec(sockets)
        except OSError as exc:
            print(f"pyrivet: could not restart: {exc}", file=sys.stderr)
            return 1
    return 0
