"""A rate limiter actor used from a FastAPI app (the actor runs in the same process).

Run it (from this folder): ``uvicorn app:api`` and try
``curl -i http://127.0.0.1:8000/hello -H 'x-api-key: alice'`` a few times: after
``CAPACITY`` quick calls the answer is 429 with a ``Retry-After`` header.

One actor per API key holds a token bucket: ``CAPACITY`` tokens, refilled at ``RATE``
per second. Each request takes a token or is refused. Because an actor runs its actions
one at a time, two concurrent requests for the same key can never both take the last
token, with no lock and no database transaction in sight; because its state is
durable, a restart does not hand everyone a fresh bucket. Keys that stop calling go to
sleep and cost no memory.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request

from pyrivet import ActorOptions, Client, Registry, Runtime, actor

#: Tokens in a full bucket: the burst a key may make.
CAPACITY = 5
#: Tokens added per second: the sustained rate.
RATE = 1.0

limiter = actor(
    "rate_limiter",
    state={"tokens": float(CAPACITY), "at": None},
    options=ActorOptions(sleep_timeout=30),
)


@limiter.action
def take(c: Any, cost: int = 1) -> dict[str, Any]:
    """Take ``cost`` tokens if there are enough.

    Returns ``{"allowed", "remaining", "retry_after"}``: ``retry_after`` is the seconds
    until enough tokens are back (0 when allowed).
    """
    now = c.clock.now()
    last = c.state["at"] if c.state["at"] is not None else now
    tokens = min(CAPACITY, c.state["tokens"] + (now - last) * RATE)
    allowed = tokens >= cost
    if allowed:
        tokens -= cost
    c.state["tokens"], c.state["at"] = tokens, now
    return {
        "allowed": allowed,
        "remaining": int(tokens),
        "retry_after": 0.0 if allowed else (cost - tokens) / RATE,
    }


registry = Registry([limiter])


def actors(request: Request) -> Client:
    """FastAPI dependency: the client of the runtime the app started."""
    return request.app.state.actors  # type: ignore[no-any-return]


def create_api(runtime: Callable[[], Runtime] = registry.runtime) -> FastAPI:
    """The FastAPI app; ``runtime`` makes the actor runtime it starts and stops with.

    (No ``from __future__ import annotations`` in this file: FastAPI reads the route
    functions' annotations at definition time.)
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime() as started:  # SQLite in ./.pyrivet by default
            app.state.actors = Client(started)
            yield

    api = FastAPI(lifespan=lifespan)

    @api.get("/hello")
    async def hello(
        x_api_key: Annotated[str, Header(description="who is calling: one bucket per key")],
        client: Annotated[Client, Depends(actors)],
    ) -> dict[str, Any]:
        verdict = await client.get_or_create("rate_limiter", [x_api_key]).take()
        if not verdict["allowed"]:
            raise HTTPException(
                429,
                detail="too many requests",
                headers={"Retry-After": str(max(1, round(verdict["retry_after"])))},
            )
        return {"hello": x_api_key, "remaining": verdict["remaining"]}

    return api


api = create_api()
