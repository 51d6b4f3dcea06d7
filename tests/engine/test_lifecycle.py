"""Envoy mode: actors sleep, wake, fire schedules and are destroyed through the engine.

Each test has an engine and an envoy of its own: 2.3.19 loses a wake that reaches an
actor's workflow just as the workflow goes to rest, a few seconds after the actor
slept (docs/engine.md, observed engine behaviour), and one test's actors resting in
the background would make the next test's wakes hit that window by chance. Within a
test, every wake is a request sent right after the stop, or the engine's own alarm.

The host is an `EnvoyHost` that also records the engine's commands and the intents it
reports, so a test waits for exactly the event it means (no timed sleeps).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from pyrivet import ActorOptions, Client, Registry, actor
from pyrivet.engine._envoy import ActorStart, EnvoyConfig
from pyrivet.engine._host import EnvoyHost
from pyrivet.server import create_app
from pyrivet.storage import MemoryDriver

from .conftest import Engine

pytestmark = pytest.mark.slow
WAIT = 30.0
POOL = "py-lifecycle-tests"
#: What the actors' scheduled action saw, by actor key (filled on the event loop).
RANG: dict[str, asyncio.Queue[int]] = {}


def make_registry() -> Registry:
    sleepy = actor(
        "sleepy",
        state={"count": 0, "wakes": 0, "rang": 0},
        options=ActorOptions(sleep_timeout=0.2),
    )

    @sleepy.on_wake
    def woke(c: Any) -> None:
        c.state["wakes"] += 1

    @sleepy.action
    def increment(c: Any) -> int:
        c.state["count"] += 1
        c.broadcast("count", c.state["count"])
        return int(c.state["count"])

    @sleepy.on_connect
    def connected(c: Any, conn: Any) -> None:
        c.state["connects"] = c.state.get("connects", 0) + 1

    @sleepy.action
    def get(c: Any) -> dict[str, int]:
        return dict(c.state)

    @sleepy.action
    def remind(c: Any, delay: float) -> None:
        c.schedule.after(delay, "ring")

    @sleepy.action
    def ring(c: Any) -> None:
        c.state["rang"] += 1
        RANG.setdefault(c.key[0], asyncio.Queue()).put_nowait(c.state["rang"])

    steady = actor("steady", state={"count": 0})  # RivetKit's 30 s sleep_timeout

    @steady.action
    def touch(c: Any) -> int:
        c.state["count"] += 1
        return int(c.state["count"])

    @steady.action
    def destroy_me(c: Any) -> None:
        c.destroy()

    @steady.action
    async def poke(c: Any, key: str) -> int:
        # Through the engine's gateway (the host's actor client): wakes a sleeping callee.
        result: int = await c.client().get_or_create("sleepy", [key]).increment()
        return result

    return Registry([sleepy, steady])


class RecordingHost(EnvoyHost):
    """An `EnvoyHost` that records starts, stops and the intents it reports."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.log: list[tuple[str, str, Any]] = []
        self._changed = asyncio.Condition()

    async def _record(self, kind: str, actor_id: str, detail: Any) -> None:
        self.log.append((kind, actor_id, detail))
        async with self._changed:
            self._changed.notify_all()

    async def start_actor(self, start: ActorStart) -> None:
        self.log.append(("hibernating", start.actor_id, start.hibernating_requests))
        await super().start_actor(start)
        await self._record("start", start.actor_id, start.generation)

    async def stop_actor(self, actor_id: str, generation: int, reason: str) -> None:
        await super().stop_actor(actor_id, generation, reason)
        # Read before anything else runs: once the stop is reported, the engine may
        # start the actor again at any time (see `position`).
        self.log.append(("awake-after-stop", actor_id, self.runtime.is_awake(actor_id)))
        await self._record("stop", actor_id, (generation, reason))

    def tunnel_message(self, message: dict[str, Any]) -> None:
        kind = message["message_kind"]
        if kind.tag == "ToEnvoyWebSocketOpen":
            self.log.append(("ws-open", kind.val["actor_id"], kind.val["path"]))
        super().tunnel_message(message)

    def request_stop(self, actor_id: str, kind: str) -> None:
        super().request_stop(actor_id, kind)
        self.log.append(("intent", actor_id, kind))

    def mark(self) -> int:
        """A position in the log: `expect` looks at what was recorded after it."""
        return len(self.log)

    def position(self, kind: str, actor_id: str, after: int) -> int:
        """The log position of the first event ``kind`` of ``actor_id`` at or after
        ``after`` (one that `expect` found)."""
        for at in range(after, len(self.log)):
            if self.log[at][:2] == (kind, actor_id):
                return at
        raise AssertionError(f"no {kind} of {actor_id} after {after}")

    async def expect(self, kind: str, actor_id: str, after: int) -> Any:
        """The first event ``kind`` of ``actor_id`` recorded at or after ``after``."""

        def found() -> Any:
            for seen_kind, seen_id, detail in self.log[after:]:
                if (seen_kind, seen_id) == (kind, actor_id):
                    return (detail,)
            return None

        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        result = found()
        assert result is not None
        return result[0]

    async def asleep(self, actor_id: str) -> None:
        """Wait until the actor's last recorded lifecycle event is a stop."""

        def last() -> str | None:
            kinds = [k for k, a, _ in self.log if a == actor_id and k != "intent"]
            return kinds[-1] if kinds else None

        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(lambda: last() == "stop")


@pytest_asyncio.fixture
async def host(engine: Engine, namespace: str) -> AsyncIterator[RecordingHost]:
    async with make_registry().runtime(storage=MemoryDriver()) as runtime:
        config = EnvoyConfig(engine.endpoint, namespace=namespace, pool=POOL, token=engine.token)
        async with (
            client_of(engine, namespace) as actor_client,
            RecordingHost(
                runtime, create_app(runtime), config, actor_client=actor_client
            ) as served,
        ):
            await asyncio.wait_for(served.envoy.wait_ready(), WAIT)
            yield served


def client_of(engine: Engine, namespace: str) -> Client:
    return Client(engine.endpoint, namespace=namespace, pool_name=POOL, token=engine.token)


def client(engine: Engine, host: RecordingHost) -> Client:
    return client_of(engine, host.envoy.config.namespace)


def engine_actor(engine: Engine, host: RecordingHost, actor_id: str) -> dict[str, Any]:
    """The engine's record of ``actor_id`` (``GET /actors``)."""
    found = engine.api("GET", f"/actors?actor_ids={actor_id}", None, host.envoy.config.namespace)
    actors: list[dict[str, Any]] = found["actors"]
    return actors[0]


async def destroyed_in_engine(engine: Engine, host: RecordingHost, actor_id: str) -> None:
    """Wait until the engine lists ``actor_id`` as destroyed (polling its API)."""
    async with asyncio.timeout(WAIT):
        while True:
            record = await asyncio.to_thread(engine_actor, engine, host, actor_id)
            if record["destroy_ts"] is not None:
                return
            await asyncio.sleep(0.05)


async def test_idle_actor_sleeps_through_the_engine_and_wakes_on_request(
    engine: Engine, host: RecordingHost
) -> None:
    async with client(engine, host) as c:
        room = c.get_or_create("sleepy", ["idle"])
        mark = host.mark()
        assert await asyncio.wait_for(room.increment(), WAIT) == 1
        actor_id = await asyncio.wait_for(room.resolve(), WAIT)
        generation = await host.expect("start", actor_id, mark)
        # Idle past sleep_timeout: the envoy asks, the engine commands the sleep.
        assert await host.expect("intent", actor_id, mark) == "sleep"
        assert await host.expect("stop", actor_id, mark) == (generation, "SleepIntent")
        assert await host.expect("awake-after-stop", actor_id, mark) is False
        record = await asyncio.to_thread(engine_actor, engine, host, actor_id)
        assert record["sleep_ts"] is not None and record["destroy_ts"] is None
        # The next request: the engine starts the next generation, state kept.
        mark = host.mark()
        assert await asyncio.wait_for(room.increment(), WAIT) == 2
        assert await host.expect("start", actor_id, mark) == generation + 1
        state = await asyncio.wait_for(room.get(), WAIT)
    # on_wake ran on the creation and on the wake (and again if it slept since).
    assert state["count"] == 2 and state["wakes"] >= 2


async def test_a_connection_keeps_its_socket_while_its_actor_sleeps(
    engine: Engine, host: RecordingHost
) -> None:
    """The gateway keeps a ``connect`` socket open while its actor sleeps (it was
    opened hibernatable); the next action on it wakes the actor, and events flow on the
    same socket and subscription before and after."""
    async with client(engine, host) as c:
        mark = host.mark()
        statuses: list[str] = []
        seen: asyncio.Queue[int] = asyncio.Queue()
        async with c.get_or_create("sleepy", ["hibernating"]).connect() as conn:
            conn.on_status_change(statuses.append)
            conn.on("count", seen.put_nowait)
            assert await asyncio.wait_for(conn.increment(), WAIT) == 1
            assert await asyncio.wait_for(seen.get(), WAIT) == 1
            actor_id = conn.actor_id
            assert actor_id is not None
            generation = await host.expect("start", actor_id, mark)
            # Idle with only a hibernatable connection: it sleeps, the socket stays.
            assert await host.expect("stop", actor_id, mark) == (generation, "SleepIntent")
            assert await host.expect("awake-after-stop", actor_id, mark) is False
            # The next start comes after that stop: the call below wakes the actor, or
            # the gateway already did (it resends what it holds unacknowledged, which a
            # loaded machine can make it do before the call is sent).
            woke = host.position("stop", actor_id, mark) + 1
            assert await asyncio.wait_for(conn.increment(), WAIT) == 2
            assert await host.expect("start", actor_id, woke) == generation + 1
            # The engine's start named the socket it kept open while the actor slept.
            assert len(await host.expect("hibernating", actor_id, woke)) == 1
            assert await asyncio.wait_for(seen.get(), WAIT) == 2
            state = await asyncio.wait_for(conn.get(), WAIT)
    opens = [e for e in host.log if e[0] == "ws-open" and e[1] == actor_id]
    assert len(opens) == 1  # one WebSocket throughout: the client never reconnected
    assert state["connects"] == 1 and state["wakes"] >= 2
    assert "disconnected" not in statuses and "reconnecting" not in statuses


async def test_actor_calls_wake_a_sleeping_actor_through_the_gateway(
    engine: Engine, host: RecordingHost
) -> None:
    async with client(engine, host) as c:
        callee = c.get_or_create("sleepy", ["callee"])
        mark = host.mark()
        assert await asyncio.wait_for(callee.increment(), WAIT) == 1
        callee_id = await asyncio.wait_for(callee.resolve(), WAIT)
        generation = await host.expect("start", callee_id, mark)
        assert await host.expect("stop", callee_id, mark) == (generation, "SleepIntent")
        mark = host.mark()
        caller = c.get_or_create("steady", ["caller"])
        assert await asyncio.wait_for(caller.poke("callee"), WAIT) == 2
        assert await host.expect("start", callee_id, mark) == generation + 1


async def test_schedule_wakes_a_sleeping_actor_through_the_engine(
    engine: Engine, host: RecordingHost
) -> None:
    rang = RANG.setdefault("alarm", asyncio.Queue())
    async with client(engine, host) as c:
        room = c.get_or_create("sleepy", ["alarm"])
        mark = host.mark()
        await asyncio.wait_for(room.remind(1.5), WAIT)
        actor_id = await asyncio.wait_for(room.resolve(), WAIT)
        generation = await host.expect("start", actor_id, mark)
        # It sleeps before the alarm is due (sleep_timeout 0.2 s) ...
        assert await host.expect("stop", actor_id, mark) == (generation, "SleepIntent")
        assert rang.empty()
        assert host.runtime.earliest_alarm(actor_id) is not None
        # ... and the engine wakes it for the alarm, which fires on the wake.
        mark = host.mark()
        assert await host.expect("start", actor_id, mark) == generation + 1
        assert await asyncio.wait_for(rang.get(), WAIT) == 1
        state = await asyncio.wait_for(room.get(), WAIT)
    assert state["rang"] == 1
    assert host.runtime.earliest_alarm(actor_id) is None


async def test_destroy_goes_through_the_engine(engine: Engine, host: RecordingHost) -> None:
    async with client(engine, host) as c:
        room = c.get_or_create("steady", ["doomed"])
        mark = host.mark()
        assert await asyncio.wait_for(room.touch(), WAIT) == 1
        actor_id = await asyncio.wait_for(room.resolve(), WAIT)
        generation = await host.expect("start", actor_id, mark)
        await asyncio.wait_for(room.destroy_me(), WAIT)
        assert await host.expect("intent", actor_id, mark) == "destroy"
        assert await host.expect("stop", actor_id, mark) == (generation, "StopIntent")
        assert await host.runtime.storage.get_actor(actor_id) is None
        # The engine destroys it once it has our Stopped event.
        await destroyed_in_engine(engine, host, actor_id)


async def test_destroy_after_a_sleep_intent_goes_through_the_api(
    engine: Engine, host: RecordingHost
) -> None:
    async with client(engine, host) as c:
        room = c.get_or_create("steady", ["late"])
        mark = host.mark()
        assert await asyncio.wait_for(room.touch(), WAIT) == 1
        actor_id = await asyncio.wait_for(room.resolve(), WAIT)
        generation = await host.expect("start", actor_id, mark)
        inst = host.runtime.awake_instance(actor_id)
        assert inst is not None
        # The actor asks to sleep and then, before the engine's StopActor, to be destroyed
        # (the engine ignores the second intent): the host destroys it through the API.
        inst.request_stop("sleep")
        inst.request_stop("destroy")
        assert await host.expect("stop", actor_id, mark) == (generation, "SleepIntent")
        assert await host.runtime.storage.get_actor(actor_id) is None
        # The engine destroys it (it had taken the sleep: without the API call it would
        # only sleep, and the next request would wake it).
        await destroyed_in_engine(engine, host, actor_id)


async def test_requests_racing_the_sleep_are_all_served(
    engine: Engine, host: RecordingHost
) -> None:
    async with client(engine, host) as c:
        room = c.get_or_create("sleepy", ["race"])
        mark = host.mark()
        assert await asyncio.wait_for(room.increment(), WAIT) == 1
        actor_id = await asyncio.wait_for(room.resolve(), WAIT)
        expected = 1
        for cycle in range(4):
            if cycle:
                mark = host.mark()
                assert await asyncio.wait_for(room.increment(), WAIT) == expected + 1
                expected += 1
            # Requests sent the moment the envoy asked to sleep: they may reach the
            # actor before the engine's StopActor, while the actor stops, or after.
            await host.expect("intent", actor_id, mark)
            calls = [room.increment() for _ in range(3)]
            results = await asyncio.wait_for(asyncio.gather(*calls), WAIT)
            expected += 3
            assert sorted(results) == [expected - 2, expected - 1, expected]
        state = await asyncio.wait_for(room.get(), WAIT)
    assert state["count"] == expected
    assert state["wakes"] >= 2  # it did sleep in between
