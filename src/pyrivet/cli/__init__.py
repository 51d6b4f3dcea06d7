"""The ``pyrivet`` command line.

```
pyrivet serve app:registry [--host 127.0.0.1] [--port 6420] [--fd N] [--data-dir .pyrivet]
                           [--log-level info] [--grace-period 30] [--log-format json]
                           [--engine URL --namespace NS --pool POOL --token T]
pyrivet inspect (--data-dir DIR | --url URL) list|state|history|state-at|diff|call ...
```

With ``--engine`` (or ``RIVET_ENDPOINT``) the registry's actors are hosted for a Rivet
Engine (envoy mode, `pyrivet.cli.envoy_command`) instead of served over HTTP.

`main` parses arguments and returns the process exit status: 0 after a clean stop
(SIGTERM/SIGINT), 1 when the app cannot be loaded or served, 2 for a usage error.
SIGHUP restarts ``pyrivet serve`` in place (same PID, listening socket kept open).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from . import envoy_command, serve_command
from .inspect_command import add_inspect_parser, run_inspect

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyrivet", description="Rivet Actors for Python: serve and manage actors."
    )
    parser.add_argument("--version", action="version", version=f"pyrivet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve a registry over HTTP/WebSocket (RivetKit client protocol)",
        description=(
            "Serve the actors of a Registry on the embedded SQLite store. SIGTERM or "
            "SIGINT stops accepting, lets in-flight requests finish within the grace "
            "period, puts every actor to sleep (state committed) and exits 0. SIGHUP "
            "does the same, then re-executes pyrivet serve in place with the listening "
            "socket kept open, so clients reconnect to the new process. Systemd socket "
            "activation (LISTEN_FDS) is used when present."
        ),
    )
    serve.add_argument(
        "app", metavar="MODULE:ATTR", help="where the Registry is, e.g. app:registry"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=6420, help="port (default 6420; 0 picks one)")
    serve.add_argument(
        "--fd",
        type=int,
        default=None,
        metavar="N",
        help="serve the listening socket inherited on file descriptor N instead of "
        "binding --host/--port",
    )
    serve.add_argument(
        "--data-dir", default=".pyrivet", help="SQLite data directory (default ./.pyrivet)"
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level (default info)",
    )
    serve.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="log lines as text (default) or one JSON object per line; both carry the "
        "actor's name, key and id on records about an actor",
    )
    serve.add_argument(
        "--grace-period",
        type=float,
        default=30.0,
        help="seconds in-flight requests get to finish on shutdown (default 30)",
    )
    engine = serve.add_argument_group(
        "envoy mode",
        "host the actors for a Rivet Engine instead of serving HTTP: clients go through "
        "the engine's gateway (see docs/engine.md)",
    )
    engine.add_argument(
        "--engine",
        metavar="URL",
        default=None,
        help="the engine's endpoint, e.g. http://127.0.0.1:6420 (default: $RIVET_ENDPOINT)",
    )
    engine.add_argument(
        "--namespace", default=None, help="engine namespace (default: $RIVET_NAMESPACE or default)"
    )
    engine.add_argument(
        "--pool", default=None, help="pool this envoy serves (default: $RIVET_POOL or default)"
    )
    engine.add_argument(
        "--token", default=None, help="the engine's admin token (default: $RIVET_TOKEN)"
    )
    engine.add_argument(
        "--engine-give-up",
        type=float,
        default=None,
        metavar="SECONDS",
        help="exit 1 after the engine was unreachable this long (default: retry forever)",
    )
    engine.add_argument(
        "--local-storage",
        action="store_true",
        help="keep the actors' data in --data-dir (SQLite) instead of the engine's KV: "
        "an actor moved to another envoy then starts without it",
    )
    engine.add_argument(
        "--local-actor-db",
        action="store_true",
        help="with the engine's storage, keep c.db databases in --data-dir (they cannot "
        "live in the engine yet; an actor moved to another envoy starts with an empty one)",
    )
    serve.add_argument(
        "--ws-compression",
        action="store_true",
        help="accept permessage-deflate on WebSockets (off by default: it costs CPU per "
        "frame and ~60 KiB per connection, and actor messages are small)",
    )
    inspector = serve.add_mutually_exclusive_group()
    inspector.add_argument(
        "--inspector-token",
        default=None,
        help="bearer token of the inspector (API and the page at /ui); default: "
        "$PYRIVET_INSPECTOR_TOKEN, else one is generated and printed at start",
    )
    inspector.add_argument(
        "--no-inspector",
        action="store_true",
        help="turn the inspector (its API, live socket and page) off",
    )
    add_inspect_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        engine = envoy_command.engine_options_from_env(
            args.engine,
            args.namespace,
            args.pool,
            args.token,
            args.engine_give_up,
            local_storage=args.local_storage,
            local_actor_db=args.local_actor_db,
        )
        if engine is not None:
            return envoy_command.run_envoy(
                args.app, engine, data_dir=args.data_dir, log_level=args.log_level
            )
        return serve_command.run_serve(
            args.app,
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            log_level=args.log_level,
            grace_period=args.grace_period,
            fd=args.fd,
            ws_compression=args.ws_compression,
            log_format=args.log_format,
            inspector_token="" if args.no_inspector else args.inspector_token,
        )
    if args.command == "inspect":
        return run_inspect(args)
    print(f"pyrivet: unknown command {args.command!r}", file=sys.stderr)
    return 2
