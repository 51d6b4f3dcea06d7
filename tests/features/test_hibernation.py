"""Hibernated connections and the event log, at the runtime (clock mocked).

`Socket` is a minimal transport: the `HibernatableSink` a server's WebSocket session is,
recording what the runtime hands it. Everything else is the real runtime and storage.
"""

from __future__ import annotations

from typing import Any

from pyrivet import ActorOptions, Registry, actor
from pyrivet._runtime.connections import ConnImpl, HibernatableSink
from pyrivet._runtime.event_log import EventLog
from pyrivet._runtime.hibernation import CONN_PREFIX, EVENTS_KEY, RECORDS_MARKER, Resume
from pyrivet.storage import MemoryDriver
from pyrivet.testing import MockClock, run_actors


class Socket(HibernatableSink):
    """A transport that keeps its socket across sleeps and records what it gets."""

    hibernatable = True
    handoff = None

    def __init__(self, sequenced: bool = True) -> None:
        self.sequenced = sequenced
        self.events: list[tuple[str, int]] = []
        self.hellos: list[dict[str, Any]] = []
        self.closes: list[str | None] = []
        self.conn: ConnImpl | None = None

    def deliver(self, event: str, payload: bytes) -> None:
        self.events.append((event, 0))

    def deliver_seq(self, event: str, payload: bytes, epoch: str, seq: int) -> None:
        self.events.append((event, seq))

    def closed(self, reason: str | None) -> None:
        self.closes.append(reason)

    def hello(self, info: dict[str, Any]) -> None:
        self.hellos.append(info)

    def hibernate(self) -> None:
        self.conn = None

    def attach(self, conn: ConnImpl) -> None:
        self.conn = conn


def make_room(log: list[str], **options: Any) -> Registry:
    room = actor(
        "room",
        state={"n": 0},
        create_conn_state=lambda c, params: {"name": params, "said": 0},
        options=ActorOptions(**options),
    )

    @room.on_connect
    def on_connect(c: Any, conn: Any) -> None:
        log.append(f"connect {conn.state['name']}")

    @room.on_disconnect
    def on_disconnect(c: Any, conn: Any) -> None:
        log.append(f"disconnect {conn.state['name']}")

    @room.action
    def say(c: Any) -> int:
        c.state["n"] += 1
        if c.conn is not None:
            c.conn.state["said"] += 1
        c.broadcast("said", c.state["n"])
        return int(c.state["n"])

    @room.action
    def names(c: Any) -> list[Any]:
        # Without the caller's own transient connection (an in-process call).
        return sorted(conn.state["name"] for conn in c.conns.values() if conn is not c.conn)

    @room.action
    async def kv_keys(c: Any) -> list[Any]:
        await c.kv.put("k", 1)
        return [key for key, _ in await c.kv.list(b"", limit=1)]

    @room.action
    def poison(c: Any) -> None:
        c.conn.state["bad"] = object()  # cannot be stored

    return Registry([room])


async def test_a_connection_left_without_socket_waits_for_its_client_then_ends() -> None:
    clock = MockClock()
    log: list[str] = []
    store = MemoryDriver()
    async with run_actors(make_room(log), storage=store, clock=clock) as (runtime, client):
        handle = client.get_or_create("room", ["a"])
        actor_id = await handle.resolve()
        sock = Socket()
        conn = await runtime.connect(actor_id, "ada", sock, {"said"}, resume=Resume())
        token = sock.hellos[0]["token"]
        await runtime.call_on_conn(conn, "say", [])
        runtime.detach(conn)  # as when the server stops: the socket goes, the client not
        await runtime.sleep(actor_id)
        assert CONN_PREFIX + conn.id in await store.load_workflow(actor_id)

        # Woken by someone else: the connection is back, waiting for its client.
        assert await handle.names() == ["ada"]
        await clock.advance(29)
        assert log == ["connect ada", "connect None", "disconnect None"]
        # Its client resumes in time: the same connection, its state, no on_connect.
        back = Socket()
        again = await runtime.connect(
            actor_id, "ada", back, resume=Resume(conn.id, token, sock.hellos[0]["epoch"], 0)
        )
        assert again.id == conn.id and again.state == {"name": "ada", "said": 1}
        assert back.hellos[0]["resumed"] is True
        assert back.events == [("said", 1)]  # the event after its cursor, replayed
        runtime.detach(again)
        await clock.advance(31)  # the window is measured from the detach
        # The actor slept meanwhile; at its next wake the connection is dropped.
        assert not runtime.is_awake(actor_id)
        await handle.say()
        await clock.advance(0.1)
        assert log[-1] == "disconnect ada"
        assert await handle.names() == []
        await runtime.sleep(actor_id)
        assert CONN_PREFIX + conn.id not in await store.load_workflow(actor_id)


async def test_a_wrong_token_gets_a_new_connection() -> None:
    log: list[str] = []
    async with run_actors(make_room(log)) as (runtime, client):
        actor_id = await client.get_or_create("room", ["a"]).resolve()
        first = await runtime.connect(actor_id, "ada", Socket(), resume=Resume())
        other = Socket()
        conn = await runtime.connect(actor_id, "bob", other, resume=Resume(first.id, "forgé"))
        assert conn.id != first.id
        assert other.hellos[0]["resumed"] is False
        assert log == ["connect ada", "connect bob"]


async def test_a_connection_whose_state_cannot_be_stored_is_closed_at_sleep() -> None:
    log: list[str] = []
    async with run_actors(make_room(log)) as (runtime, client):
        actor_id = await client.get_or_create("room", ["a"]).resolve()
        sock = Socket()
        conn = await runtime.connect(actor_id, "ada", sock)
        await runtime.call_on_conn(conn, "poison", [])
        await runtime.sleep(actor_id)
        assert sock.closes == ["actor sleeping"]
        assert log == ["connect ada", "disconnect ada"]


async def test_parked_sockets_whose_records_are_gone_are_closed_on_wake() -> None:
    log: list[str] = []
    store = MemoryDriver()
    async with run_actors(make_room(log), storage=store) as (runtime, client):
        handle = client.get_or_create("room", ["a"])
        actor_id = await handle.resolve()
        sock = Socket()
        conn = await runtime.connect(actor_id, "ada", sock)
        await runtime.sleep(actor_id)
        assert sock.conn is None
        # The records are lost (as after a crash of the final save).
        await store.commit([_delete_conn(actor_id, conn.id)])
        assert await handle.names() == []
        assert sock.closes == ["actor.connection_lost"]


def _delete_conn(actor_id: str, conn_id: str) -> Any:
    from pyrivet.storage._base import CommitRecord

    return CommitRecord(actor_id, 99, workflow_deletes=(CONN_PREFIX + conn_id,))


async def test_events_older_than_the_retention_age_are_a_gap() -> None:
    clock = MockClock()
    log: list[str] = []
    registry = make_room(log, event_retention=10, event_retention_age=60)
    async with run_actors(registry, clock=clock) as (runtime, client):
        handle = client.get_or_create("room", ["a"])
        actor_id = await handle.resolve()
        sock = Socket()
        await runtime.connect(actor_id, "ada", sock, {"said"}, resume=Resume())
        epoch = sock.hellos[0]["epoch"]
        await handle.say()
        await clock.advance(61)
        await handle.say()
        late = Socket()
        await runtime.connect(actor_id, "ada", late, {"said"}, resume=Resume(epoch=epoch, seq=0))
        gap = late.hellos[0]["gap"]
        assert (gap["code"], gap["after"], gap["until"]) == ("retention", 0, 1)
        assert late.events == [("said", 2)]


def test_the_event_log_survives_a_save_and_knows_its_epochs() -> None:
    log = EventLog(3, 300)
    for n in range(5):
        log.append(None, "e", bytes([n]), 1000)
    log.append("conn-1", "private", b"", 1000)
    saved = log.encode(1000)
    woken = EventLog(3, 300, saved)
    assert woken.epoch != log.epoch and woken.last_seq == 6
    # A cursor of the saved run is known; one of a lost run is not.
    missed, gap = woken.since(log.epoch, 4, "conn-1", {"e"}, 1000)
    assert [e.seq for e in missed] == [5, 6] and gap is None
    missed, gap = woken.since(log.epoch, 4, "conn-2", {"e"}, 1000)
    assert [e.seq for e in missed] == [5]  # the private event is not for conn-2
    missed, gap = woken.since("lost-run", 4, None, {"e"}, 1000)
    assert missed == [] and gap is not None and gap.code == "unknown_epoch"
    missed, gap = woken.since(log.epoch, 7, None, {"e"}, 1000)
    assert gap is not None and gap.code == "unknown_epoch"  # past that run's end
    # Retention 0 numbers events but keeps none.
    empty = EventLog(0, 300)
    assert empty.append(None, "e", b"", 0) == 1 and not empty.events
    missed, gap = empty.since(empty.epoch, 0, None, {"e"}, 0)
    assert gap is not None and gap.code == "retention"


async def test_the_log_is_saved_only_for_actors_with_resuming_clients() -> None:
    log: list[str] = []
    store = MemoryDriver()
    async with run_actors(make_room(log), storage=store) as (runtime, client):
        plain = client.get_or_create("room", ["plain"])
        await plain.say()
        plain_id = await plain.resolve()
        await runtime.sleep(plain_id)
        assert EVENTS_KEY not in await store.load_workflow(plain_id)

        resumed = client.get_or_create("room", ["resumed"])
        resumed_id = await resumed.resolve()
        await runtime.connect(resumed_id, "ada", Socket(), resume=Resume())
        await resumed.say()
        await runtime.sleep(resumed_id)
        assert EVENTS_KEY in await store.load_workflow(resumed_id)


async def test_an_awake_actor_drops_a_connection_not_resumed_in_time() -> None:
    clock = MockClock()
    log: list[str] = []
    registry = make_room(log, sleep_timeout=3600, connection_resume_window=10)
    async with run_actors(registry, clock=clock) as (runtime, client):
        handle = client.get_or_create("room", ["a"])
        actor_id = await handle.resolve()
        first = await runtime.connect(actor_id, "ada", Socket())
        second = await runtime.connect(actor_id, "bob", Socket())
        runtime.detach(first)
        await clock.advance(5)
        runtime.detach(second)
        await runtime.sleep(actor_id)
        assert await handle.names() == ["ada", "bob"]  # woken: both wait for clients
        await clock.advance(5.5)
        assert await handle.names() == ["bob"]
        await clock.advance(5)
        assert await handle.names() == []
        assert [e for e in log if e.startswith("disconnect ") and "None" not in e] == [
            "disconnect ada",
            "disconnect bob",
        ]


async def test_the_records_marker_is_kept_out_of_c_kv_and_dropped_with_the_records() -> None:
    log: list[str] = []
    store = MemoryDriver()
    async with run_actors(make_room(log), storage=store) as (runtime, client):
        handle = client.get_or_create("room", ["a"])
        actor_id = await handle.resolve()
        sock = Socket(sequenced=False)
        await runtime.connect(actor_id, "ada", sock)
        await runtime.sleep(actor_id)
        assert await store.kv_get(actor_id, RECORDS_MARKER) is not None
        # The reserved key sorts first, yet a listing of one entry is the user's key.
        assert await handle.kv_keys() == [b"k"]
        assert sock.conn is not None  # the connection restored by the wake
        await sock.conn.disconnect()
        await runtime.sleep(actor_id)
        assert await store.kv_get(actor_id, RECORDS_MARKER) is None
        assert not any(k.startswith("rt/") for k in await store.load_workflow(actor_id))
