"""examples/rate_limiter: the FastAPI app calling the limiter actor in-process.

The app runs on httpx's ASGI transport (its lifespan entered by hand, as a server
would), on a mock clock: refills happen when the test advances time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from pyrivet import Runtime
from pyrivet.testing import MockClock

from .conftest import load_example

example = load_example("rate_limiter/app.py")


@asynccontextmanager
async def api_client(clock: MockClock, data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    def runtime() -> Runtime:
        return example.registry.runtime(clock=clock, data_dir=data_dir)  # type: ignore[no-any-return]

    api = example.create_api(runtime)
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


async def test_a_burst_gets_capacity_then_429_and_the_bucket_survives_a_restart(
    tmp_path: Path,
) -> None:
    clock = MockClock()
    alice = {"x-api-key": "alice"}
    async with api_client(clock, tmp_path) as client:
        # Concurrent requests for one key: the actor runs them one at a time, so
        # exactly CAPACITY get through.
        burst = await asyncio.gather(*(client.get("/hello", headers=alice) for _ in range(8)))
        statuses = sorted(r.status_code for r in burst)
        assert statuses == [200] * example.CAPACITY + [429] * (8 - example.CAPACITY)
        refused = next(r for r in burst if r.status_code == 429)
        assert refused.headers["retry-after"] == "1"
        # Another key has its own bucket.
        assert (await client.get("/hello", headers={"x-api-key": "bob"})).status_code == 200
        # Without a key: FastAPI's own validation error.
        assert (await client.get("/hello")).status_code == 422

        await clock.advance(2 / example.RATE)  # two tokens come back
        assert (await client.get("/hello", headers=alice)).json()["remaining"] == 1

    # A restart does not refill the bucket: the tokens are in the actor's state.
    async with api_client(clock, tmp_path) as client:
        response = await client.get("/hello", headers=alice)
        assert response.json() == {"hello": "alice", "remaining": 0}
        assert (await client.get("/hello", headers=alice)).status_code == 429
