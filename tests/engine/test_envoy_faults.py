"""Faults the real engine cannot be made to produce on demand, against `fake_engine`:
a malformed frame, replayed commands, late event acks, refusals, a long disconnection."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from pyrivet._util.backoff import Backoff
from pyrivet.engine._envoy import Envoy, EnvoyConfig, EnvoyState
from pyrivet.engine._errors import EngineError, EngineUnavailableError, EngineVersionError
from pyrivet.engine._host import EnvoyHost
from pyrivet.engine._kv import EngineKV
from pyrivet.engine._schema import Tagged
from pyrivet.server import create_app
from pyrivet.storage import MemoryDriver
from pyrivet.testing import MockClock
from server._support import make_registry

from .fake_engine import checkpoint, fake_engine, start_command, stop_command
from .test_envoy import Recorder

WAIT = 10.0
QUICK = Backoff(initial=0.01, maximum=0.05, jitter=0)


def config(endpoint: str) -> EnvoyConfig:
    return EnvoyConfig(endpoint, pool="fake", backoff=QUICK, actor_names=("counter",))


async def test_malformed_frame_resets_the_socket_and_kv_is_resent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with fake_engine() as fake, Envoy(config(fake.endpoint), Recorder()) as envoy:
        first = await fake.next()
        await first.init()
        await envoy.wait_ready()
        reading = asyncio.ensure_future(EngineKV(envoy).get("actor-1", [b"k"]))
        request = await first.recv_tag("ToRivetKvRequest")
        assert request["data"] == Tagged("KvGetRequest", {"keys": [b"k"]})
        await first.ws.send(b"\xff\x00garbage")
        await asyncio.wait_for(first.done.wait(), WAIT)
        assert "malformed frame from the engine" in caplog.text
        second = await fake.next()
        await second.init()
        again = await second.recv_tag("ToRivetKvRequest")
        assert again == request  # the same request id, resent on the new socket
        answer = {"keys": [b"k"], "values": [b"v"], "metadata": []}
        reply = {"request_id": again["request_id"], "data": Tagged("KvGetResponse", answer)}
        await second.send(Tagged("ToEnvoyKvResponse", reply))
        assert await asyncio.wait_for(reading, WAIT) == [b"v"]


async def test_replayed_commands_are_dropped_and_events_resent_until_acked() -> None:
    handler = Recorder()
    async with fake_engine() as fake, Envoy(config(fake.endpoint), handler) as envoy:
        first = await fake.next()
        await first.init()
        await first.send(Tagged("ToEnvoyCommands", [start_command("a", 0)]))
        kind, start = await handler.next()
        assert kind == "start" and start.actor_id == "a"
        ack = await first.recv_tag("ToRivetAckCommands")
        assert ack["last_command_checkpoints"] == [checkpoint("a", 0, 0)]
        running = await first.recv_tag("ToRivetEvents")
        assert running[0]["checkpoint"] == checkpoint("a", 0, 0)
        await first.ws.close()  # dropped before the engine acknowledged the event

        second = await fake.next()
        await second.init()
        resent = await second.recv_tag("ToRivetEvents")
        assert resent == running
        # The engine replays the unacknowledged start with a new stop.
        replay = [start_command("a", 0), stop_command("a", 1, "StopIntent")]
        await second.send(Tagged("ToEnvoyCommands", replay))
        assert await handler.next() == ("stop", ("a", 0, "StopIntent"))
        ack = await second.recv_tag("ToRivetAckCommands")
        assert ack["last_command_checkpoints"] == [checkpoint("a", 0, 1)]
        stopped = await second.recv_tag("ToRivetEvents")
        assert stopped[0]["checkpoint"] == checkpoint("a", 0, 1)
        assert stopped[0]["inner"].val["state"].tag == "ActorStateStopped"
        acked = {"last_event_checkpoints": [checkpoint("a", 0, 1)]}
        await second.send(Tagged("ToEnvoyAckEvents", acked))
        await second.send(Tagged("ToEnvoyPing", {"ts": 1}))
        assert await second.recv_tag("ToRivetPong") == {"ts": 1}
        await second.ws.close()

        third = await fake.next()
        await third.init()
        await third.send(Tagged("ToEnvoyPing", {"ts": 2}))
        # Nothing left to resend: the first frame after Init is the Pong.
        assert await third.recv() == Tagged("ToRivetPong", {"ts": 2})
        assert handler.calls.empty()
        assert envoy.connections == 3


async def test_stop_for_an_unknown_actor_is_acknowledged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = Recorder()
    async with fake_engine() as fake, Envoy(config(fake.endpoint), handler) as envoy:
        conn = await fake.next()
        await conn.init()
        await envoy.wait_ready()
        with caplog.at_level(logging.WARNING):
            await conn.send(Tagged("ToEnvoyCommands", [stop_command("ghost", 3, "Destroy")]))
            ack = await conn.recv_tag("ToRivetAckCommands")
        assert ack["last_command_checkpoints"] == [checkpoint("ghost", 0, 3)]
        assert "stop command for unknown actor ghost" in caplog.text
        assert handler.calls.empty()


async def test_failed_start_is_reported_as_stopped_error() -> None:
    handler = Recorder()
    handler.fail_start = True
    async with fake_engine() as fake, Envoy(config(fake.endpoint), handler):
        conn = await fake.next()
        await conn.init()
        await conn.send(Tagged("ToEnvoyCommands", [start_command("bad", 0)]))
        events = await conn.recv_tag("ToRivetEvents")
        state = events[0]["inner"].val["state"]
        assert state.tag == "ActorStateStopped" and state.val["code"] == "Error"
        assert "start refused by the test" in state.val["message"]


async def test_an_engine_of_another_protocol_version_is_refused() -> None:
    async with (
        fake_engine(protocol_version=7) as fake,
        Envoy(config(fake.endpoint), Recorder()) as envoy,
    ):
        with pytest.raises(EngineVersionError, match="speaks envoy protocol version 7"):
            await envoy.wait_ready()
        assert envoy.state is EnvoyState.FAILED
        assert fake.connections.empty()  # it never opened the socket


async def test_a_refusing_close_is_not_retried() -> None:
    async with fake_engine() as fake, Envoy(config(fake.endpoint), Recorder()) as envoy:
        conn = await fake.next()
        await conn.ws.close(1011, "ws.invalid_request#abc")
        with pytest.raises(EngineError, match=r"refused this envoy .*ws.invalid_request"):
            await envoy.wait_ready()
        assert fake.connections.empty()


async def test_disconnected_past_the_lost_threshold_stops_the_actors() -> None:
    clock = MockClock()
    handler = Recorder()
    async with fake_engine() as fake, Envoy(config(fake.endpoint), handler, clock=clock) as envoy:
        first = await fake.next()
        await first.init()
        await first.send(Tagged("ToEnvoyCommands", [start_command("a", 0)]))
        assert (await handler.next())[0] == "start"
        await first.recv_tag("ToRivetEvents")
        await first.ws.close()
        await asyncio.wait_for(first.done.wait(), WAIT)
        await asyncio.wait_for(envoy.wait_state(EnvoyState.BACKOFF), WAIT)
        await clock.advance(1)  # the backoff: it reconnects, but gets no Init
        second = await fake.next()
        assert (await second.recv()).tag == "ToRivetMetadata"
        assert handler.calls.empty()
        await clock.advance(15)
        assert await handler.next() == ("stop", ("a", 0, "Lost"))
        await second.init(read_metadata=False)
        await envoy.wait_ready()
        # The stop is reported (Error: Ok without an intent would destroy the actor)
        # after the events the engine has not acknowledged, so an engine that did not
        # move the actor meanwhile knows it is no longer running here.
        resent = await second.recv_tag("ToRivetEvents")
        states = [event["inner"].val["state"] for event in resent]
        assert [state.tag for state in states] == ["ActorStateRunning", "ActorStateStopped"]
        assert states[1].val == {"code": "Error", "message": "envoy connection lost"}
        assert [event["checkpoint"]["index"] for event in resent] == [0, 1]
        # The engine's own stop of that generation only ends it: no second stop.
        await second.send(Tagged("ToEnvoyCommands", [stop_command("a", 1, "Lost")]))
        acked = await second.recv_tag("ToRivetAckCommands")
        assert acked["last_command_checkpoints"][0]["index"] == 1
        assert handler.calls.empty()


class SavingRecorder(Recorder):
    """A `Recorder` whose stops write a last time (as an actor's final save does)."""

    def __init__(self) -> None:
        super().__init__()
        self.kv: EngineKV | None = None

    async def stop_actor(self, actor_id: str, generation: int, reason: str) -> None:
        await super().stop_actor(actor_id, generation, reason)
        assert self.kv is not None
        await self.kv.put(actor_id, [(b"final", b"save")])


async def test_a_lost_actors_writes_fail_after_the_bound_and_are_never_resent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Disconnected past the lost threshold, the envoy stops its actor, whose final
    save waits for the engine. The engine stays away ``lost_write_timeout`` more: that
    save and a write in flight since before the drop fail with a clear error (the stop
    ends, reported ``Stopped(Error)``), a new write is refused at once, and when the
    engine comes back neither is resent: a write not acknowledged is never
    acknowledged later."""
    clock = MockClock()
    handler = SavingRecorder()
    async with fake_engine() as fake, Envoy(config(fake.endpoint), handler, clock=clock) as envoy:
        kv = handler.kv = EngineKV(envoy)
        first = await fake.next()
        await first.init()
        await first.send(Tagged("ToEnvoyCommands", [start_command("a", 0)]))
        assert (await handler.next())[0] == "start"
        await first.recv_tag("ToRivetEvents")
        in_flight = asyncio.ensure_future(kv.put("a", [(b"k", b"v")]))
        await first.recv_tag("ToRivetKvRequest")  # sent, never answered
        await first.ws.close()
        await asyncio.wait_for(first.done.wait(), WAIT)
        await asyncio.wait_for(envoy.wait_state(EnvoyState.BACKOFF), WAIT)
        await clock.advance(1)  # it reconnects, but the engine sends no Init
        second = await fake.next()
        assert (await second.recv()).tag == "ToRivetMetadata"
        await clock.advance(15)
        assert await handler.next() == ("stop", ("a", 0, "Lost"))
        assert not in_flight.done()  # still waiting for the engine
        await clock.advance(10)
        with pytest.raises(EngineError, match="stopped here as lost"):
            await asyncio.wait_for(in_flight, WAIT)
        assert "failing its 2 unacknowledged KV writes" in caplog.text
        with pytest.raises(EngineError, match="stopped here as lost"):
            await kv.put("a", [(b"k", b"later")])
        await second.init(read_metadata=False)
        await envoy.wait_ready()
        # Nothing is resent but the events: KV requests would come before them.
        frame = await second.recv()
        while frame.tag == "ToRivetPong":
            frame = await second.recv()
        assert frame.tag == "ToRivetEvents"
        states = [event["inner"].val["state"] for event in frame.val]
        assert states[-1].tag == "ActorStateStopped" and states[-1].val["code"] == "Error"
        assert "stopped here as lost" in states[-1].val["message"]
        # The engine starting it here again lifts the refusal.
        await second.send(Tagged("ToEnvoyCommands", [start_command("a", 0, generation=1)]))
        assert (await handler.next())[0] == "start"
        writing = asyncio.ensure_future(kv.put("a", [(b"k", b"again")]))
        request = await second.recv_tag("ToRivetKvRequest")
        reply = {"request_id": request["request_id"], "data": Tagged("KvPutResponse")}
        await second.send(Tagged("ToEnvoyKvResponse", reply))
        await asyncio.wait_for(writing, WAIT)


async def test_start_of_an_actor_type_this_envoy_does_not_host_is_a_clear_error() -> None:
    """A ``StartActor`` naming an actor the registry does not define: reported
    ``Stopped(Error)`` naming it; the envoy and the runtime keep serving."""
    start = start_command("stray", 0)
    start["inner"].val["config"]["name"] = "no-such-actor"
    async with make_registry().runtime(storage=MemoryDriver()) as runtime:
        async with fake_engine() as fake:
            host = EnvoyHost(runtime, create_app(runtime), config(fake.endpoint))
            async with host:
                conn = await fake.next()
                await conn.init()
                await conn.send(Tagged("ToEnvoyCommands", [start, start_command("good", 0)]))
                states: dict[str, Tagged] = {}
                while len(states) < 2:
                    for event in await conn.recv_tag("ToRivetEvents"):
                        states[event["checkpoint"]["actor_id"]] = event["inner"].val["state"]
        assert states["good"].tag == "ActorStateRunning"
        assert states["stray"].tag == "ActorStateStopped"
        assert states["stray"].val["code"] == "Error"
        assert "no-such-actor" in states["stray"].val["message"]


async def test_an_unreachable_engine_is_retried_with_backoff_then_given_up() -> None:
    """Nothing listens at the endpoint: the envoy retries after 1, 2, 4, 4 s (the
    backoff, no jitter) and gives up with a clear error at the first failure past
    ``give_up_after``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    clock = MockClock()
    backoff = Backoff(initial=1, maximum=4, jitter=0)
    unreachable = EnvoyConfig(f"http://127.0.0.1:{port}", backoff=backoff, give_up_after=10)

    waits: list[float] = []
    async with Envoy(unreachable, Recorder(), clock=clock) as envoy:
        while len(waits) < 4:
            # The attempt (real I/O, refused) ended: the envoy sleeps on the clock.
            await asyncio.wait_for(envoy.wait_state(EnvoyState.BACKOFF), WAIT)
            await clock.settle()
            deadline = clock.next_deadline()
            assert deadline is not None
            waits.append(deadline - clock.now())
            await clock.advance(waits[-1])
        with pytest.raises(EngineUnavailableError, match=f"could not reach .*:{port} for 10 s"):
            await asyncio.wait_for(envoy.wait_ready(), WAIT)
    assert waits == [1, 2, 4, 4]  # the fifth attempt, at 11 s, was past the bound
