"""What the inspector reads about one actor, as JSON-ready plain data.

Every function runs on the event loop. Reads never wake a sleeping actor: an awake
actor answers from memory (its current state, open connections, mailbox), a sleeping
one from storage (its committed state, queue, schedules, KV, history). Values are
plain data (dicts, lists, scalars); bytes that are not UTF-8 text are shown as
``0x`` + hex.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ..._codec.values import decode, encode
from ..._codec.versioned import unwrap
from ...errors import ActorError, EncodingError
from ...storage._base import HistoryEntry
from ...workflow import WorkflowHistory

if TYPE_CHECKING:
    from ..._runtime.instance import ActorInstance
    from ..._runtime.runtime import Runtime

__all__ = [
    "MAX_PAGE",
    "connections",
    "entry_json",
    "find_snapshot",
    "history_page",
    "plain_snapshot",
    "queue",
    "queue_size",
    "readable_payload",
    "schedules",
    "state",
    "workflow_json",
]

#: The most history entries, queue messages or KV entries one request returns.
MAX_PAGE: Final = 1000


#: Values `readable` returns as they are (checked by exact type: the common case).
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
#: Tuples, not ``a | b`` unions: ``isinstance`` with a union built per call is ~10x slower.
_BYTES: Final = (bytes, bytearray, memoryview)
_SEQUENCES: Final = (list, tuple)


def readable(value: Any) -> Any:
    """``value`` with bytes turned into text (UTF-8) or ``0x`` + hex, recursively."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, _BYTES):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + data.hex()
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): readable(v) for k, v in value.items()}
    if isinstance(value, _SEQUENCES):
        return [readable(v) for v in value]
    return value


def plain_snapshot(snapshot: bytes | None) -> Any:
    """The plain data of a stored state snapshot (its version envelope dropped)."""
    if snapshot is None:
        return None
    _version, payload = unwrap(snapshot)
    return readable(decode(payload))


def plain(value: Any) -> Any:
    """Any storable value (a dataclass, a model, plain data) as plain data."""
    return readable(decode(encode(value, "the value")))


def state(runtime: Runtime, inst: ActorInstance | None, snapshot: bytes | None) -> Any:
    """The current state: the awake actor's in memory, else the committed ``snapshot``."""
    if inst is None:
        return plain_snapshot(snapshot)
    try:
        return plain_snapshot(inst.definition.state_codec.encode(inst.state))
    except EncodingError:
        # Mid-change and not encodable right now: show what was last committed.
        return plain_snapshot(inst.journal.saved_state)


def connections(inst: ActorInstance | None) -> list[dict[str, Any]]:
    """The open connections (a sleeping actor has none)."""
    if inst is None or not inst.conns:
        return []
    out = []
    for conn in inst.conns.values():
        try:
            params, conn_state = plain(conn.params), plain(conn.state)
        except EncodingError:
            params, conn_state = repr(conn.params), repr(conn.state)
        out.append(
            {
                "id": conn.id,
                "details": {
                    "params": params,
                    "state": conn_state,
                    "subscriptions": sorted(conn.subscriptions),
                },
            }
        )
    return out


async def queue(
    runtime: Runtime, actor_id: str, name: str, inst: ActorInstance | None, limit: int
) -> dict[str, Any]:
    """``{size, maxSize, truncated, messages: [{id, name, createdAtMs, body}]}``: the
    awake actor's mailbox, else the committed queue."""
    if inst is not None:
        records = list(inst.mailbox.messages.values()) if inst.mailbox is not None else []
    else:
        records = (await runtime.storage.load_queue(actor_id)).messages
    return {
        "size": len(records),
        "maxSize": runtime.definition(name).options.max_queue_size,
        "truncated": len(records) > limit,
        "messages": [
            {
                "id": r.id,
                "name": r.name,
                "createdAtMs": r.created_at_ms,
                "body": readable_payload(r.body),
            }
            for r in records[:limit]
        ],
    }


async def queue_size(runtime: Runtime, actor_id: str, inst: ActorInstance | None) -> int:
    """How many messages the awake actor's mailbox holds, else the committed queue."""
    if inst is not None:
        return len(inst.mailbox.messages) if inst.mailbox is not None else 0
    return len((await runtime.storage.load_queue(actor_id)).messages)


def readable_payload(data: bytes) -> Any:
    """An encoded value (a body, an argument list) as readable plain data."""
    try:
        return readable(decode(data))
    except Exception:
        return readable(data)


async def schedules(runtime: Runtime, actor_id: str) -> list[dict[str, Any]]:
    """The committed schedules of the actor, soonest first."""
    return [
        {
            "id": a.alarm_id,
            "kind": a.kind,
            "action": a.action,
            "args": readable_payload(a.args),
            "fireAtMs": a.fire_at_ms,
            "createdAtMs": a.created_at_ms,
            "cron": a.cron,
            "timezone": a.timezone,
        }
        for a in await runtime.storage.list_alarms(actor_id)
    ]


async def kv(runtime: Runtime, actor_id: str, limit: int) -> dict[str, Any]:
    """Committed KV entries in key order: ``{entries: [{key, value}], truncated}``."""
    rows = await runtime.storage.kv_list(actor_id, b"", limit + 1)
    return {
        "entries": [{"key": readable(k), "value": readable_payload(v)} for k, v in rows[:limit]],
        "truncated": len(rows) > limit,
    }


def entry_json(entry: HistoryEntry, with_state: bool = True) -> dict[str, Any]:
    """One history entry: seq, time, kind, action name and arguments, ops, state after."""
    out: dict[str, Any] = {
        "seq": entry.seq,
        "atMs": entry.at_ms,
        "kind": entry.kind,
        "name": entry.name,
        "by": entry.by,
        "args": readable_payload(entry.args) if entry.args is not None else None,
        "stateChanged": entry.state is not None,
        "ops": readable_payload(entry.ops) if entry.ops is not None else [],
    }
    if with_state and entry.state is not None:
        out["state"] = plain_snapshot(entry.state)
    return out


async def history_page(
    runtime: Runtime, actor_id: str, after: int, limit: int, with_state: bool
) -> dict[str, Any]:
    """``{entries, next}``: entries with ``seq > after``, oldest first; ``next`` is the
    ``after`` of the following page (None on the last page)."""
    await runtime.drain()
    entries = await runtime.storage.read_history(actor_id, after, limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    return {
        "entries": [entry_json(e, with_state) for e in entries],
        "next": entries[-1].seq if more else None,
    }


def seq_not_found(actor_id: str, seq: int, why: str) -> ActorError:
    return ActorError(
        f"actor {actor_id} has no history entry {seq} ({why}); list them with "
        "GET …/inspector/history",
        group="inspector",
        code="seq_not_found",
        metadata={"seq": seq},
    )


async def find_snapshot(runtime: Runtime, actor_id: str, seq: int) -> HistoryEntry:
    """The latest retained entry at or before ``seq`` that carries a state snapshot.

    Scans backwards in growing windows, so the cost is that of the entries between
    ``seq`` and the snapshot, not of the whole history.

    Raises:
        ActorError: ``inspector/seq_not_found``: no entry ``seq`` is retained, or no
            retained entry up to it has a state.
    """
    if seq < 1:
        raise seq_not_found(actor_id, seq, "seqs start at 1")
    await runtime.drain()
    top, window, first = seq, 16, True
    while top > 0:
        after = max(0, top - window)
        chunk = await runtime.storage.read_history(actor_id, after, top - after)
        if first:
            if not chunk or chunk[-1].seq != seq:
                raise seq_not_found(actor_id, seq, "not committed, or pruned by history_limit")
            first = False
        for entry in reversed(chunk):
            if entry.state is not None:
                return entry
        if not chunk:
            break
        top, window = after, window * 4
    raise seq_not_found(actor_id, seq, "no retained entry up to it has a state")


def workflow_json(history: WorkflowHistory) -> dict[str, Any]:
    """A workflow's history: ``{state, output, error, entries: [...]}``."""
    return {
        "state": history.state,
        "output": readable(history.output),
        "error": history.error,
        "entries": [
            {
                "key": e.key,
                "name": e.name,
                "kind": e.kind,
                "status": e.status,
                "attempts": e.attempts,
                "lastAttemptAt": e.last_attempt_at,
                "output": readable(e.output),
                "error": e.error,
                "deadline": e.deadline,
                "iteration": e.iteration,
            }
            for e in history.entries
        ],
    }
