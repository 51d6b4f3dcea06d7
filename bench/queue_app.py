"""The actors of the queue benchmark (``bench_queue.py``), in-process and served.

    pyrivet serve queue_app:registry --port 6420 --data-dir /tmp/bench-data   # from bench/

All three keep pyrivet's default durability ("strict": an acknowledgement waits for
the commit that covers it):

* ``worker``: its ``run`` loop receives every message of queue ``jobs`` completable,
  adds one to ``state["done"]`` and completes the message with the new count (the
  count and the message's delete go into one commit, then the sender gets the count);
* ``inbox``: queue ``jobs`` and nobody receiving, so a send measures the durable
  enqueue alone (room for 1,000,000 messages: a long run never fills it);
* ``counter``: the plain strict action to compare with, ``increment(n)`` adds ``n`` to
  ``state["count"]`` and returns it.
"""

from __future__ import annotations

from typing import Any

from pyrivet import ActorOptions, Registry, actor

worker = actor("worker", state={"done": 0}, queues=["jobs"])


@worker.run
async def work(c: Any) -> None:
    async for message in c.queue.iter("jobs", completable=True):
        c.state["done"] += 1
        await message.complete(c.state["done"])


inbox = actor(
    "inbox",
    state={},
    queues=["jobs"],
    options=ActorOptions(max_queue_size=1_000_000),
)

counter = actor("counter", state={"count": 0})


@counter.action
def increment(c: Any, n: int = 1) -> int:
    c.state["count"] += n
    return int(c.state["count"])


registry = Registry([worker, inbox, counter])
