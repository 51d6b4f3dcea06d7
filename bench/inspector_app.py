"""The counter of ``bench_inspector.py``: ``bench/counter_app.py``'s actor (strict),
keeping 20,000 history entries instead of the default 100, so a history of 10,000
entries can be read back.

    pyrivet serve inspector_app:registry --port 6420 --data-dir /tmp/bench-data   # from bench/
"""

from __future__ import annotations

from typing import Any

from pyrivet import ActorOptions, Registry, actor

counter = actor("counter", state={"count": 0}, options=ActorOptions(history_limit=20_000))


@counter.action
def increment(c: Any, n: int = 1) -> int:
    c.state["count"] += n
    c.broadcast("newCount", c.state["count"])
    return int(c.state["count"])


registry = Registry([counter])
