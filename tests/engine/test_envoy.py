"""The envoy connection against a real rivet-engine: lifecycle commands, events, KV."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from pyrivet._util.backoff import Backoff
from pyrivet.engine._envoy import ActorStart, Envoy, EnvoyConfig, EnvoyState
from pyrivet.engine._errors import EngineKVError, EngineUnavailableError, EngineVersionError
from pyrivet.engine._kv import EngineKV
from pyrivet.engine._schema import Tagged

from .conftest import Engine

pytestmark = pytest.mark.slow
WAIT = 30.0


class Recorder:
    """An `EnvoyHandler` that records what the engine asked for."""

    def __init__(self) -> None:
        self.calls: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.tunnel: list[dict[str, Any]] = []
        self.fail_start = False
        #: Set it to have HTTP requests through the gateway answered 200 "ok".
        self.envoy: Envoy | None = None
        self.replies: set[asyncio.Task[bool]] = set()

    async def start_actor(self, start: ActorStart) -> None:
        await self.calls.put(("start", start))
        if self.fail_start:
            raise RuntimeError("start refused by the test")

    async def stop_actor(self, actor_id: str, generation: int, reason: str) -> None:
        await self.calls.put(("stop", (actor_id, generation, reason)))

    def tunnel_message(self, message: dict[str, Any]) -> None:
        self.tunnel.append(message)
        if self.envoy is not None and message["message_kind"].tag == "ToEnvoyRequestStart":
            response = {"status": 200, "headers": {}, "body": b"ok", "stream": False}
            reply = {
                "message_id": {**message["message_id"], "message_index": 0},
                "message_kind": Tagged("ToRivetResponseStart", response),
            }
            task = asyncio.get_running_loop().create_task(self.envoy.send_tunnel(reply))
            self.replies.add(task)
            task.add_done_callback(self.replies.discard)

    async def next(self) -> tuple[str, Any]:
        return await asyncio.wait_for(self.calls.get(), WAIT)


def config(engine: Engine, pool: str, namespace: str, **kw: Any) -> EnvoyConfig:
    return EnvoyConfig(
        engine.endpoint,
        namespace=namespace,
        pool=pool,
        token=engine.token,
        actor_names=("counter",),
        **kw,
    )


async def test_start_kv_and_destroy(engine: Engine, pool: str, namespace: str) -> None:
    handler = Recorder()
    async with Envoy(config(engine, pool, namespace), handler) as envoy:
        await asyncio.wait_for(envoy.wait_ready(), WAIT)
        assert envoy.state is EnvoyState.READY
        assert envoy.metadata["envoy_lost_threshold"] > 0
        actor_id = await asyncio.to_thread(engine.create_actor, "counter", "k1", pool, namespace)
        kind, start = await handler.next()
        assert kind == "start" and start.actor_id == actor_id
        assert (start.name, start.key) == ("counter", "k1")

        kv = EngineKV(envoy)
        await kv.put(actor_id, [(b"a/1", b"one"), (b"a/2", b"two"), (b"b/1", b"three")])
        assert await kv.get(actor_id, [b"a/1", b"missing", b"b/1"]) == [b"one", None, b"three"]
        assert await kv.list(actor_id, prefix=b"a/") == [(b"a/1", b"one"), (b"a/2", b"two")]
        assert await kv.list(actor_id, prefix=b"a/", reverse=True, limit=1) == [(b"a/2", b"two")]
        assert [k for k, _ in await kv.list(actor_id)] == [b"a/1", b"a/2", b"b/1"]
        ranged = await kv.list(actor_id, start=b"a/2", end=b"b/1")
        assert [k for k, _ in ranged] == [b"a/2", b"b/1"]  # the engine includes ``end``
        ranged = await kv.list(actor_id, start=b"a/2", end=b"b/1", exclusive=True)
        assert [k for k, _ in ranged] == [b"a/2"]
        await kv.delete(actor_id, [b"a/1"])
        assert await kv.get(actor_id, [b"a/1"]) == [None]
        await kv.delete_range(actor_id, b"a/", b"b/")
        assert [k for k, _ in await kv.list(actor_id)] == [b"b/1"]
        await kv.drop(actor_id)
        assert await kv.list(actor_id) == []

        await asyncio.to_thread(engine.api, "DELETE", f"/actors/{actor_id}", None, namespace)
        kind, stop = await handler.next()
        assert kind == "stop" and stop == (actor_id, start.generation, "Destroy")


async def test_kv_error_reply_is_a_clear_error(engine: Engine, pool: str, namespace: str) -> None:
    async with Envoy(config(engine, pool, namespace), Recorder()) as envoy:
        await asyncio.wait_for(envoy.wait_ready(), WAIT)
        with pytest.raises(EngineKVError, match="KvGetRequest for actor not-an-actor"):
            await asyncio.wait_for(EngineKV(envoy).get("not-an-actor", [b"x"]), WAIT)


async def test_sleep_intent_and_wake_with_next_generation(
    engine: Engine, pool: str, namespace: str
) -> None:
    handler = Recorder()
    async with Envoy(config(engine, pool, namespace), handler) as envoy:
        await asyncio.wait_for(envoy.wait_ready(), WAIT)
        actor_id = await asyncio.to_thread(
            engine.create_actor, "counter", "sleepy", pool, namespace
        )
        _, start = await handler.next()
        await envoy.send_intent(actor_id, start.generation, "sleep")
        kind, stop = await handler.next()
        assert kind == "stop" and stop == (actor_id, start.generation, "SleepIntent")
        # A request through the gateway wakes it: a new start, the next generation.
        handler.envoy = envoy
        async with httpx.AsyncClient(timeout=WAIT) as http:
            response = await http.get(f"{engine.endpoint}/gateway/{actor_id}/health")
        assert (response.status_code, response.text) == (200, "ok")
        kind, again = await handler.next()
        assert kind == "start" and again.actor_id == actor_id
        assert again.generation == start.generation + 1


async def test_failed_start_is_reported_and_reconnect_keeps_serving(
    engine: Engine, pool: str, namespace: str
) -> None:
    handler = Recorder()
    async with Envoy(config(engine, pool, namespace), handler) as envoy:
        await asyncio.wait_for(envoy.wait_ready(), WAIT)
        ws = envoy._ws
        assert ws is not None
        await ws.close()  # a dropped socket: the envoy reconnects by itself
        await asyncio.wait_for(envoy.wait_connections(2), WAIT)
        actor_id = await asyncio.to_thread(engine.create_actor, "counter", "after", pool, namespace)
        kind, start = await handler.next()
        assert kind == "start" and start.actor_id == actor_id


async def test_version_mismatch_fails_without_retrying(
    engine: Engine, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyrivet.engine import _admin

    monkeypatch.setattr(_admin, "PROTOCOL_VERSION", 9)
    async with Envoy(config(engine, pool, "default"), Recorder()) as envoy:
        with pytest.raises(EngineVersionError) as caught:
            await asyncio.wait_for(envoy.wait_ready(), WAIT)
    message = str(caught.value)
    assert "envoy protocol version 8" in message and "speaks version 9" in message
    assert "2.3.19" in message and "rivet-engine" in message


async def test_unreachable_engine_gives_up_after_the_bound() -> None:
    quick = Backoff(initial=0.01, maximum=0.02, jitter=0)
    unreachable = EnvoyConfig("http://127.0.0.1:9", backoff=quick, give_up_after=0.05)
    async with Envoy(unreachable, Recorder()) as envoy:
        with pytest.raises(EngineUnavailableError, match="could not reach the Rivet Engine"):
            await asyncio.wait_for(envoy.wait_ready(), WAIT)
        assert envoy.state is EnvoyState.FAILED
