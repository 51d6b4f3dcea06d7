"""``pyrivet inspect``: look at actors in a data directory or on a running server.

```
pyrivet inspect (--data-dir DIR | --url URL) [--app MODULE:ATTR] COMMAND ...
  list [--name N] [--limit N] [--cursor C] [--json]
  state ACTOR
  history ACTOR [--after SEQ] [--limit N]
  state-at ACTOR SEQ
  diff ACTOR FROM_SEQ TO_SEQ
  call ACTOR ACTION [ARG ...]          (each ARG is JSON: 5, '"text"', '{"a": 1}')
```

``ACTOR`` is an actor id, or ``NAME:KEY`` with the key in the management API's form
(``counter:room-1``, ``chat:eu/room-7``).

Offline (``--data-dir``): opens the SQLite store itself, which takes the data
directory's lock. While a server holds it, the command says so (naming its pid) and
points at ``--url``; nothing is read or changed. Reads decode states as plain data
without the app; ``call`` runs the action, so it needs ``--app`` (the actor starts,
the action commits, the actor sleeps again).

Online (``--url``): ``list`` and ``call`` go through the management API and the
gateway (the network client: ``pyrivet[client]``); ``state``, ``history``,
``state-at`` and ``diff`` through the server's inspector API, which needs its token
(``--token``, or ``PYRIVET_INSPECTOR_TOKEN``; ``pyrivet serve`` prints it at start) and
answers without waking a sleeping actor. They print the inspector's JSON answers.

Output is JSON (``list`` prints a table unless ``--json``). Exit status: 0 on success,
1 when the actor, a seq or the data directory is not found or the call failed, 2 for a
usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .._codec.values import decode
from .._codec.versioned import unwrap
from .._protocol.listing import ActorInfo, ActorPage, decode_cursor, encode_cursor
from .._protocol.query import deserialize_key
from .._runtime.history import HistoryRecord, state_at, to_record
from .._runtime.registry import Registry
from .._runtime.state_diff import diff_states
from ..client import Client
from ..errors import ActorError, DataDirLockedError, StorageError
from ..server.inspector import TOKEN_ENV
from ..storage._base import ActorRecord, ActorStore
from ..storage._sqlite import DB_FILE, SQLiteDriver
from .serve_command import LoadError, load_registry

__all__ = ["add_inspect_parser", "run_inspect"]


class InspectError(Exception):
    """A failure the command reports as one line on stderr (exit status 1)."""


def add_inspect_parser(commands: Any) -> None:
    """Add ``inspect`` and its subcommands to the ``pyrivet`` parser."""
    inspect = commands.add_parser(
        "inspect",
        help="list actors, show state and history, diff, call actions",
        description=(
            "Inspect actors offline in a data directory (--data-dir; not while a server "
            "holds it) or on a running server (--url; reads need the inspector token)."
        ),
    )
    where = inspect.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", help="the SQLite data directory (e.g. .pyrivet)")
    where.add_argument("--url", help="a running server, e.g. http://127.0.0.1:6420")
    inspect.add_argument(
        "--token",
        help=f"the inspector token for reads with --url (default: ${TOKEN_ENV})",
    )
    inspect.add_argument(
        "--app", metavar="MODULE:ATTR", help="the Registry (needed by call with --data-dir)"
    )
    sub = inspect.add_subparsers(dest="inspect_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="list actors: name, key, id, awake or asleep")
    listing.add_argument("--name", help="only actors of this type")
    listing.add_argument("--limit", type=int, default=100, help="actors per page (default 100)")
    listing.add_argument("--cursor", help="the cursor a previous page printed")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    state = sub.add_parser("state", help="the actor's current committed state")
    state.add_argument("actor", metavar="ACTOR")
    history = sub.add_parser("history", help="the actor's committed changes, oldest first")
    history.add_argument("actor", metavar="ACTOR")
    history.add_argument("--after", type=int, default=0, help="entries after this seq")
    history.add_argument("--limit", type=int, default=50, help="entries per page (default 50)")
    at = sub.add_parser("state-at", help="the state as of history entry SEQ")
    at.add_argument("actor", metavar="ACTOR")
    at.add_argument("seq", type=int)
    diff = sub.add_parser("diff", help="what changed in the state between two seqs")
    diff.add_argument("actor", metavar="ACTOR")
    diff.add_argument("from_seq", type=int, metavar="FROM_SEQ")
    diff.add_argument("to_seq", type=int, metavar="TO_SEQ")
    call = sub.add_parser("call", help="call an action (arguments as JSON)")
    call.add_argument("actor", metavar="ACTOR")
    call.add_argument("action", metavar="ACTION")
    call.add_argument("args", nargs="*", metavar="ARG")


def run_inspect(args: argparse.Namespace) -> int:
    """Run one ``inspect`` subcommand; returns the exit status."""
    try:
        call_args = [_json_arg(a) for a in args.args] if args.inspect_command == "call" else []
        if args.url is not None:
            output = asyncio.run(_online(args, call_args))
        else:
            output = asyncio.run(_offline(args, call_args))
    except InspectError as exc:
        print(f"pyrivet inspect: {exc}", file=sys.stderr)
        return 1
    except ActorError as exc:
        print(f"pyrivet inspect: {exc.group}/{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(output)
    return 0


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise InspectError(f"argument {text!r} is not JSON; quote strings: '\"{text}\"'") from None


# -- offline -------------------------------------------------------------------------


async def _offline(args: argparse.Namespace, call_args: list[Any]) -> str:
    data_dir = Path(args.data_dir)
    if not (data_dir / DB_FILE).exists():
        raise InspectError(f"{data_dir} holds no pyrivet data ({DB_FILE} is missing)")
    if args.inspect_command == "call":
        return await _offline_call(args, data_dir, call_args)
    store = SQLiteDriver(data_dir)
    await _open(store, data_dir)
    try:
        return await _read(store, args)
    finally:
        await store.close()


async def _open(store: SQLiteDriver, data_dir: Path) -> None:
    try:
        await store.open()
    except DataDirLockedError as exc:
        raise InspectError(
            f"{exc}. A server holds it: inspect through the server instead, "
            "pyrivet inspect --url http://HOST:PORT ..., or stop it first"
        ) from None
    except StorageError as exc:
        raise InspectError(f"cannot open {data_dir}: {exc}") from None


async def _read(store: ActorStore, args: argparse.Namespace) -> str:
    command = args.inspect_command
    if command == "list":
        after = None
        if args.cursor:
            try:
                after = decode_cursor(args.cursor)
            except ValueError as exc:
                raise InspectError(str(exc)) from None
        found = await store.list_actors(args.name, after=after, limit=args.limit + 1)
        following = None
        if len(found) > args.limit:
            found = found[: args.limit]
            following = encode_cursor(found[-1].created_at_ms, found[-1].actor_id)
        infos = [ActorInfo(r.actor_id, r.name, r.key, r.created_at_ms / 1000, False) for r in found]
        return _list_output(ActorPage(infos, following), args.json)
    record = await _find(store, args.actor)
    if command == "state":
        stored = await store.load_state(record.actor_id)
        state = None if stored.snapshot is None else decode(unwrap(stored.snapshot)[1])
        return _dump({"actor": _actor_json(record), "seq": stored.seq, "state": state})
    if command == "history":
        entries = await store.read_history(record.actor_id, args.after, args.limit)
        page = [to_record(e, None) for e in entries]
        next_after = page[-1].seq if len(page) == args.limit else None
        return _dump({"entries": [_entry_json(r) for r in page], "next_after": next_after})
    log = [to_record(e, None) for e in await store.read_history(record.actor_id, 0, None)]
    if command == "state-at":
        return _dump({"seq": args.seq, "state": _state_at(log, args.seq, record)})
    old = _state_at(log, args.from_seq, record)
    new = _state_at(log, args.to_seq, record)
    return _dump({"from": args.from_seq, "to": args.to_seq, "changes": diff_states(old, new)})


def _state_at(records: list[HistoryRecord], seq: int, record: ActorRecord) -> Any:
    try:
        return state_at(records, seq, record.actor_id)
    except LookupError as exc:
        last = records[-1].seq if records else 0
        raise InspectError(f"{exc} (its history holds seqs up to {last})") from None


async def _find(store: ActorStore, actor: str) -> ActorRecord:
    name, sep, key = actor.partition(":")
    if sep:
        found = await store.find_actor(name, deserialize_key(key))
        if found is None:
            raise InspectError(f"no actor {name!r} with key {key!r}")
        return found
    record = await store.get_actor(actor)
    if record is None:
        raise InspectError(f"no actor with id {actor!r} (give an id or NAME:KEY)")
    return record


async def _offline_call(args: argparse.Namespace, data_dir: Path, call_args: list[Any]) -> str:
    if args.app is None:
        raise InspectError("call needs the app to run the action: add --app MODULE:ATTR")
    registry = _registry(args.app)
    store = SQLiteDriver(data_dir)
    runtime = registry.runtime(storage=store)
    try:
        await runtime.start()
    except DataDirLockedError as exc:
        raise InspectError(f"{exc}. A server holds it: use --url to call through it") from None
    try:
        record = await _find(store, args.actor)
        result = (
            await Client(runtime)
            .get_for_id(record.name, record.actor_id)
            .action(args.action, *call_args)
        )
    finally:
        await runtime.aclose()
    return _dump({"output": result})


def _registry(spec: str) -> Registry:
    try:
        return load_registry(spec)
    except LoadError as exc:
        raise InspectError(str(exc)) from None


# -- online --------------------------------------------------------------------------


async def _online(args: argparse.Namespace, call_args: list[Any]) -> str:
    command = args.inspect_command
    async with Client(args.url, encoding="json") as client:
        if command == "list":
            page = await client.list_actors(args.name, cursor=args.cursor, limit=args.limit)
            return _list_output(page, args.json)
        name, sep, key = args.actor.partition(":")
        if command != "call":
            # Reads go through the server's inspector API, by actor id.
            actor_id = (
                await client.get(name, list(deserialize_key(key))).resolve() if sep else args.actor
            )
            return await asyncio.to_thread(_inspector_get, args, actor_id)
        if sep:
            handle = client.get(name, list(deserialize_key(key)))
        else:
            found = await _online_find(client, args.actor)
            handle = client.get_for_id(found.name, found.actor_id)
        return _dump({"output": await handle.action(args.action, *call_args)})


def _inspector_get(args: argparse.Namespace, actor_id: str) -> str:
    """GET the inspector route answering ``args``'s read command; its JSON, printed.

    Runs on a worker thread (a blocking ``urllib`` request).

    Raises:
        InspectError: no token, the server refused it, or the route failed.
    """
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise InspectError(
            f"reading {args.inspect_command} over HTTP needs the inspector token: pass "
            f"--token (pyrivet serve prints it at start) or set {TOKEN_ENV}"
        )
    command = args.inspect_command
    if command == "state":
        route, query = "summary", {}
    elif command == "history":
        route, query = "history", {"after": args.after, "limit": args.limit, "states": 1}
    elif command == "state-at":
        route, query = "state-at", {"seq": args.seq}
    else:
        route, query = "diff", {"from": args.from_seq, "to": args.to_seq}
    base = args.url.rstrip("/")
    target = f"{base}/gateway/{urllib.parse.quote(actor_id, safe='')}/inspector/{route}"
    if query:
        target += "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(target, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            error = json.loads(detail)
            detail = f"{error.get('group')}/{error.get('code')}: {error.get('message')}"
        except ValueError:
            pass
        raise InspectError(f"the server answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise InspectError(f"cannot reach {base}: {exc}") from None
    if command == "state":
        actor = {"actor_id": body.get("actorId"), "name": body.get("name"), "key": body.get("key")}
        return _dump({"actor": actor, "seq": body.get("seq"), "state": body.get("state")})
    return _dump(body)


async def _online_find(client: Client, actor_id: str) -> ActorInfo:
    cursor = None
    while True:
        page = await client.list_actors(cursor=cursor, limit=1000)
        for info in page.actors:
            if info.actor_id == actor_id:
                return info
        if page.cursor is None:
            raise InspectError(f"no actor with id {actor_id!r} (give an id or NAME:KEY)")
        cursor = page.cursor


# -- output --------------------------------------------------------------------------


def _list_output(page: ActorPage, as_json: bool) -> str:
    if as_json:
        return _dump(
            {
                "actors": [
                    {
                        "actor_id": a.actor_id,
                        "name": a.name,
                        "key": list(a.key),
                        "created_at": a.created_at,
                        "awake": a.awake,
                    }
                    for a in page.actors
                ],
                "cursor": page.cursor,
            }
        )
    rows = [("NAME", "KEY", "ID", "STATUS")]
    rows += [
        (a.name, "/".join(a.key) or "-", a.actor_id, "awake" if a.awake else "asleep")
        for a in page.actors
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    ]
    if page.cursor is not None:
        lines.append(f"(more: --cursor {page.cursor})")
    return "\n".join(lines)


def _actor_json(record: ActorRecord) -> dict[str, Any]:
    return {"actor_id": record.actor_id, "name": record.name, "key": list(record.key)}


def _entry_json(record: HistoryRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "at": record.at,
        "kind": record.kind,
        "name": record.name,
        "by": record.by,
        "args": record.args,
        "state_changed": record.state_changed,
        "state": record.state,
        "ops": record.ops,
    }


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    """JSON for what `json` cannot write: bytes as ``{"$bytes": base64}``, tuples and
    sets as lists, anything else as its ``repr``."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)
