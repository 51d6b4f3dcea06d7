"""A durable counter: run it twice and the count keeps going.

python examples/counter.py
"""

import asyncio

from pyrivet import Client, Registry, UserError, actor

counter = actor("counter", state={"count": 0})


@counter.action
def increment(c, amount: int = 1) -> int:
    if amount < 0:
        raise UserError("amount must be positive", code="negative_amount")
    c.state["count"] += amount
    c.broadcast("count", c.state["count"])
    return c.state["count"]


registry = Registry([counter])


async def main() -> None:
    # Embedded SQLite in ./.pyrivet; every reply below is durable before it returns.
    async with registry.runtime() as runtime:
        client = Client(runtime)
        room = client.get_or_create("counter", ["room-1"])
        async with room.connect() as conn:
            conn.on("count", lambda n: print("event: count is now", n))
            print("increment ->", await room.increment(5))
            print("typed call ->", await room.call(increment, 2))
        try:
            await room.increment(-1)
        except UserError as error:
            print("rejected:", error.code)
        actor_id = await room.resolve()
        history = await runtime.history(actor_id)
        print("history:", [(h.seq, h.kind, h.name, h.state) for h in history[-3:]])


if __name__ == "__main__":
    asyncio.run(main())
