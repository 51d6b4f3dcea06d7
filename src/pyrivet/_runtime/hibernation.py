"""Connection hibernation and resume: connections that outlive their actor's sleep.

A connection is hibernatable when its transport can keep the socket open without the
actor (a ``.connect()`` WebSocket; `HibernatableSink`) and its actor type allows it
(``ActorOptions.hibernatable_connections``, on by default as in RivetKit). Such
connections do not keep the actor awake. When the actor sleeps:

* `hibernate` parks each one's socket in the runtime's `Parking` (actor id ->
  connection id -> sink) and tells the socket (``sink.hibernate()``) to drop the
  connection object; ``on_disconnect`` does not run;
* the final save writes one record per connection (id, resume token, params, state,
  subscriptions, and the socket's `handoff.SocketIdentity` record when its transport
  gives one) and the actor's `EventLog` into the actor's record map, under
  ``rt/`` (`SleepRecords`), next to workflow records (which never use that prefix).

When the actor wakes (any request, or a message on a parked socket), `restore` runs
before ``create_vars``/``on_wake``: every record becomes a connection in ``c.conns``
again, with its state and subscriptions, and ``on_connect`` is not run. A record whose
socket is parked here gets that socket back (``sink.attach(conn)``). A record whose
client left while the actor slept (`Parking.left`, e.g. a ping timeout) gets
``on_disconnect`` once the actor runs. A record with no socket here (the server
restarted since) waits ``connection_resume_window`` for its client to resume it with
its token (`take_over`), then gets ``on_disconnect``. (In envoy mode a new process
parks the sockets the engine's gateway kept open before the wake, from their stored
socket records: ``handoff.py``; they are then attached like any parked socket.)

A resuming client may also give an event cursor: `greet` sends it the events it
missed, or the gap it cannot get (``event_log.py``).

Everything runs on the runtime's event loop. Hooks that raise are logged (as
``disconnect`` does); nothing here raises into the caller except storage errors on
wake, which fail the wake.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import msgspec

from .._codec.values import decode, encode
from .._util.clock import Timer
from ..errors import EncodingError
from ..storage._base import CommitRecord
from .connections import ConnHost, ConnImpl, EventSink, HibernatableSink, deliver, disconnect
from .event_log import EventLog, LoggedEvent
from .kv import RESERVED_KEY
from .parking import Parking
from .writes import Contribution, Outgoing

__all__ = [
    "CONN_PREFIX",
    "baseline",
    "detach",
    "forget",
    "EVENTS_KEY",
    "RECORDS_MARKER",
    "RUNTIME_PREFIX",
    "ConnRecord",
    "Parking",
    "Realtime",
    "RealtimeHost",
    "Resume",
    "greet",
    "hibernate",
    "release",
    "restore",
    "take_over",
    "workflow_records",
]

log = logging.getLogger("pyrivet.actor")

#: Keys of the actor's record map that belong to the runtime, not to its workflow.
RUNTIME_PREFIX = "rt/"
CONN_PREFIX = "rt/conn/"
EVENTS_KEY = "rt/events"
#: A reserved key of the actor's KV, present while it has records under ``rt/``: a
#: wake reads it (a short inline read) instead of loading the record map every time.
#: ``c.kv`` listings leave it out.
RECORDS_MARKER = RESERVED_KEY


def workflow_records(records: Mapping[str, bytes]) -> dict[str, bytes]:
    """The workflow's own records of an actor's record map."""
    return {k: v for k, v in records.items() if not k.startswith(RUNTIME_PREFIX)}


class ConnRecord(msgspec.Struct, array_like=True, frozen=True):
    """A hibernated connection as saved with its actor (version 1)."""

    version: int
    id: str
    token: str
    params: bytes
    state: bytes
    subscriptions: list[str]
    sequenced: bool
    #: When its socket went away without its client leaving (server stop), else None.
    detached_at_ms: int | None
    #: Its socket's `handoff.SocketIdentity.record` (a socket another process can
    #: serve again: envoy mode), else None. Absent from records written before it.
    socket: bytes | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    """What a reconnecting client asks for (pyrivet's resume extension)."""

    conn_id: str | None = None
    token: str | None = None
    epoch: str | None = None
    seq: int | None = None


class Realtime:
    """What an awake actor keeps for its event sequence and its stored connections."""

    __slots__ = ("detached", "events_stored", "log", "stored", "timer")

    def __init__(self) -> None:
        self.log: EventLog | None = None
        #: Connections without a socket waiting for their client (after a server stop
        #: or restart): id -> when the socket went (ms).
        self.detached: dict[str, int] = {}
        #: Ids of the connection records in storage.
        self.stored: set[str] = set()
        #: The event log is in storage.
        self.events_stored = False
        #: Expires connections waiting for their client after a restart.
        self.timer: Timer | None = None


class RealtimeHost(ConnHost, Protocol):
    """What this module needs of an actor instance."""

    __slots__ = ()

    realtime: Realtime | None

    def track(self, awaitable: Any, what: str) -> Any:
        """Run background work that shutdown waits for."""
        ...


def _realtime(inst: RealtimeHost) -> Realtime:
    rt = inst.realtime
    if rt is None:
        rt = Realtime()
        inst.realtime = rt  # type: ignore[misc]  # a slot of the implementation
    return rt


def _event_log(inst: RealtimeHost) -> EventLog:
    rt = _realtime(inst)
    if rt.log is None:
        opts = inst.definition.options
        rt.log = EventLog(opts.event_retention, opts.event_retention_age)
    return rt.log


def release(inst: RealtimeHost, outgoing: Outgoing) -> None:
    """Number a released event (once a resuming client used the actor; until then
    nobody can ask for it back and nothing is kept) and hand it to its recipients."""
    rt = inst.realtime
    event_log = rt.log if rt is not None else None
    if event_log is None:
        deliver(inst.conns, outgoing)
        return
    target, name, payload = outgoing
    seq = event_log.append(
        target.id if target is not None else None, name, payload, inst.svc.now_ms()
    )
    deliver(inst.conns, outgoing, event_log.epoch, seq)


# -- sleeping ---------------------------------------------------------------------------


def hibernate(inst: RealtimeHost) -> list[ConnImpl]:
    """At sleep: park the sockets of hibernatable connections and stage the records of
    every connection to keep; return the connections to close instead."""
    if inst.conns is None and inst.realtime is None:
        return []  # no connection, no event log: nothing to park, keep or close
    parking = inst.svc.parking
    close: list[ConnImpl] = []
    rt = inst.realtime
    expired = _expired_at(inst)
    for conn in list((inst.conns or {}).values()):
        if (
            not conn.hibernatable
            or _encode_conn(inst, conn) is None
            or (
                conn.sink is None and rt is not None and rt.detached.get(conn.id, expired) < expired
            )
        ):
            close.append(conn)
            continue
        sink = conn.sink
        if sink is not None:
            parking.park(inst.actor_id, conn.id, sink)
            conn.sink = None
            cast(HibernatableSink, sink).hibernate()
    keeps = len(close) < len(inst.conns or ())
    if keeps or (
        rt is not None and (rt.stored or (rt.log is not None and rt.log.dirty and rt.log.durable))
    ):
        inst.journal.contribute(SleepRecords(inst, close), schedule=False)
    return close


class SleepRecords(Contribution):
    """The connection records and event log written by the final save of a sleep."""

    __slots__ = ("_closing", "_inst")

    def __init__(self, inst: RealtimeHost, closing: list[ConnImpl]) -> None:
        self._inst = inst
        self._closing = {c.id for c in closing}

    def write(self, record: CommitRecord, ops: list[Any]) -> None:
        inst = self._inst
        rt = inst.realtime
        stored = rt.stored if rt is not None else set()
        puts: list[tuple[str, bytes]] = []
        kept: set[str] = set()
        for conn in list((inst.conns or {}).values()):
            if not conn.hibernatable or conn.id in self._closing or not conn.is_open:
                continue
            data = _encode_conn(inst, conn)
            if data is not None:
                puts.append((CONN_PREFIX + conn.id, data))
                kept.add(conn.id)
        events_stored = rt is not None and rt.events_stored
        if rt is not None and rt.log is not None and rt.log.dirty and rt.log.durable:
            puts.append((EVENTS_KEY, rt.log.encode(inst.svc.now_ms())))
            events_stored = True
        deletes = tuple(CONN_PREFIX + i for i in stored - kept)
        record.workflow_puts = (*record.workflow_puts, *puts)
        record.workflow_deletes = (*record.workflow_deletes, *deletes)
        if kept or events_stored:
            record.kv_puts = [*record.kv_puts, (RECORDS_MARKER, b"")]
        else:
            record.kv_deletes = [*record.kv_deletes, RECORDS_MARKER]
        ops.extend(("conn.put", k) for k, _ in puts if k != EVENTS_KEY)
        ops.extend(("conn.delete", k) for k in deletes)

    def settled(self, error: BaseException | None) -> None:
        if error is not None:
            log.error(
                "actor %s (%s): its hibernated connections could not be saved: %s",
                self._inst.name,
                self._inst.actor_id,
                error,
            )


def _encode_conn(inst: RealtimeHost, conn: ConnImpl) -> bytes | None:
    try:
        params = encode(conn.params, "the connection params")
        state = encode(conn.state, "the connection state")
    except EncodingError as exc:
        log.error(
            "actor %s (%s): connection %s cannot hibernate and is closed: %s",
            inst.name,
            inst.actor_id,
            conn.id,
            exc.message,
        )
        return None
    rt = inst.realtime
    detached = rt.detached.get(conn.id) if rt is not None else None
    # At sleep the socket is parked, not on the connection any more.
    sink = conn.sink or inst.svc.parking.parked.get(inst.actor_id, {}).get(conn.id)
    handoff = getattr(sink, "handoff", None) if sink is not None else None
    record = ConnRecord(
        1,
        conn.id,
        conn.token or "",
        params,
        state,
        sorted(conn.subscriptions),
        conn.sequenced,
        detached if conn.sink is None else None,
        handoff.record() if handoff is not None else None,
    )
    return msgspec.msgpack.encode(record)


# -- waking -------------------------------------------------------------------------


async def restore(inst: RealtimeHost) -> None:
    """On wake, before the wake hooks: the event log and the connections saved at sleep
    (see the module doc). Raises storage errors (the wake fails)."""
    parking = inst.svc.parking
    parked = parking.parked.get(inst.actor_id)
    store = inst.svc.store
    if (
        not parked
        and inst.actor_id not in parking.gone
        and await store.kv_get(inst.actor_id, RECORDS_MARKER) is None
    ):
        return
    records = await store.load_workflow(inst.actor_id)
    events = records.get(EVENTS_KEY)
    conns = {k: v for k, v in records.items() if k.startswith(CONN_PREFIX)}
    gone = parking.gone.pop(inst.actor_id, set())
    if events is None and not conns:
        if parked:  # records lost (a crash after parking): close those sockets
            for conn_id in list(parked):
                sink = parking.unpark(inst.actor_id, conn_id)
                if sink is not None:
                    sink.closed("actor.connection_lost")
        return
    rt = _realtime(inst)
    opts = inst.definition.options
    if events is not None:
        rt.log = EventLog(opts.event_retention, opts.event_retention_age, events)
        rt.events_stored = True
    now = inst.svc.now_ms()
    expired = _expired_at(inst)
    ended: list[ConnImpl] = []
    waiting: list[tuple[ConnImpl, int]] = []
    for data in conns.values():
        record = msgspec.msgpack.decode(data, type=ConnRecord)
        rt.stored.add(record.id)
        sink = parking.unpark(inst.actor_id, record.id)
        conn = ConnImpl(inst, decode(record.params), sink, None, conn_id=record.id)
        conn.state = decode(record.state)
        conn.subscriptions.update(record.subscriptions)
        conn.hibernatable = True
        conn.token = record.token or None
        conn.sequenced = record.sequenced
        if conn.sequenced:
            _event_log(inst).durable = True
        inst.add_conn(conn)
        if sink is not None:
            cast(HibernatableSink, sink).attach(conn)
        elif record.id in gone:
            ended.append(conn)
        elif record.detached_at_ms is not None and record.detached_at_ms < expired:
            ended.append(conn)  # its client did not come back in time
        else:
            detached = record.detached_at_ms or now
            rt.detached[conn.id] = detached
            waiting.append((conn, detached))
    # Sockets parked for records that are gone (a crash lost the final save).
    for conn_id in list(parking.parked.get(inst.actor_id, {})):
        sink = parking.unpark(inst.actor_id, conn_id)
        if sink is not None:
            sink.closed("actor.connection_lost")
    if ended or waiting:
        life = inst.lifecycle()
        life.ready.add_done_callback(lambda _f: _after_wake(inst, ended, waiting))


def _expired_at(inst: RealtimeHost) -> int:
    """Connections detached before this time (ms) waited their whole resume window."""
    window = inst.definition.options.connection_resume_window
    return inst.svc.now_ms() - int(window * 1000) + 1


def _after_wake(
    inst: RealtimeHost, ended: list[ConnImpl], waiting: list[tuple[ConnImpl, int]]
) -> None:
    for conn in ended:
        inst.track(disconnect(conn, "the client left"), "on_disconnect")
    if not waiting:
        return
    window_ms = int(inst.definition.options.connection_resume_window * 1000)
    now = inst.svc.now_ms()
    soonest = min(at for _, at in waiting) + window_ms
    rt = _realtime(inst)
    rt.timer = inst.svc.clock.call_later(
        max(0.0, (soonest - now) / 1000), lambda: _expire(inst, window_ms)
    )


def _expire(inst: RealtimeHost, window_ms: int) -> None:
    """Drop the restored connections whose client did not come back in time."""
    rt = _realtime(inst)
    rt.timer = None
    now = inst.svc.now_ms()
    later: list[int] = []
    for conn in list((inst.conns or {}).values()):
        at = rt.detached.get(conn.id)
        if at is None or conn.sink is not None:
            continue
        if at + window_ms <= now:
            rt.detached.pop(conn.id, None)
            inst.track(
                disconnect(conn, "the client did not resume the connection"), "on_disconnect"
            )
        else:
            later.append(at + window_ms)
    if later:
        rt.timer = inst.svc.clock.call_later(
            (min(later) - now) / 1000, lambda: _expire(inst, window_ms)
        )


def forget(inst: RealtimeHost, conn_id: str) -> None:
    """A connection restored from storage closed while its actor is awake: its record
    (with its socket's) is deleted by the actor's next commit, so no later wake, here
    or in another process, restores it."""
    rt = inst.realtime
    if rt is None or conn_id not in rt.stored:
        return
    rt.stored.discard(conn_id)
    inst.journal.contribute(_Forget(rt, conn_id))


class _Forget(Contribution):
    """The deletion of one closed connection's record (`forget`)."""

    __slots__ = ("_conn_id", "_rt")

    def __init__(self, rt: Realtime, conn_id: str) -> None:
        self._rt = rt
        self._conn_id = conn_id

    def write(self, record: CommitRecord, ops: list[Any]) -> None:
        key = CONN_PREFIX + self._conn_id
        record.workflow_deletes = (*record.workflow_deletes, key)
        if not self._rt.stored and not self._rt.events_stored:
            record.kv_deletes = [*record.kv_deletes, RECORDS_MARKER]  # no record left under rt/
        ops.append(("conn.delete", key))

    def settled(self, error: BaseException | None) -> None:
        if error is not None:
            self._rt.stored.add(self._conn_id)  # the next sleep's save deletes it


def detach(conn: ConnImpl) -> None:
    """The server stops and closes ``conn``'s socket, but its client has not left: keep
    the connection (it is saved at sleep) for the client to resume."""
    conn.sink = None
    inst = cast(RealtimeHost, conn.owner)
    _realtime(inst).detached[conn.id] = inst.svc.now_ms()


# -- resuming -----------------------------------------------------------------------


def take_over(inst: RealtimeHost, resume: Resume, sink: EventSink) -> ConnImpl | None:
    """The connection ``resume`` names, now served by ``sink``; None when there is no
    such connection or the token does not match (the client gets a new one)."""
    if resume.conn_id is None or resume.token is None:
        return None
    conn = (inst.conns or {}).get(resume.conn_id)
    if (
        conn is None
        or conn.token is None
        or not hmac.compare_digest(conn.token.encode(), resume.token.encode())
        or not conn.is_open
    ):
        return None
    old = conn.sink
    conn.sink = sink
    conn.sequenced = bool(getattr(sink, "sequenced", False))
    if inst.realtime is not None:
        inst.realtime.detached.pop(conn.id, None)
    if old is not None and old is not sink:
        old.closed("connection.resumed_elsewhere")
    return conn


def baseline(inst: RealtimeHost) -> tuple[str, int]:
    """The current end of the actor's event sequence: (epoch, last seq); from now on
    the log is saved at sleep (a client that resumes uses this actor)."""
    event_log = _event_log(inst)
    event_log.durable = True
    return event_log.epoch, event_log.last_seq


def greet(
    inst: RealtimeHost,
    conn: ConnImpl,
    sink: EventSink,
    resume: Resume,
    start: tuple[str, int],
    resumed: bool,
) -> None:
    """Tell a sequenced client where it stands, then send what it missed.

    ``start`` is the sequence position before the connection opened (events numbered
    since then were delivered to it live).
    """
    hsink = cast(HibernatableSink, sink)
    epoch, last = start
    info: dict[str, Any] = {
        "conn": conn.id,
        "token": conn.token,
        "epoch": epoch,
        "seq": last,
        "resumed": resumed,
    }
    missed: list[LoggedEvent] = []
    if resume.epoch is not None and resume.seq is not None:
        event_log = _event_log(inst)
        missed, gap = event_log.since(
            resume.epoch, resume.seq, conn.id, conn.subscriptions, inst.svc.now_ms()
        )
        missed = [e for e in missed if e.seq <= last]
        if gap is not None:
            info["gap"] = gap.to_wire()
    hsink.hello(info)
    for event in missed:
        hsink.deliver_seq(event.name, event.payload, epoch, event.seq)
