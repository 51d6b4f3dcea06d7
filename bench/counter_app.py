"""The counter actor of the server benchmarks, the same as RivetKit's anchor ``server.mjs``.

    pyrivet serve counter_app:registry --port 6420 --data-dir /tmp/bench-data   # from bench/

State ``{count}``; ``increment(n)`` adds ``n``, broadcasts ``newCount`` with the new
count and returns it; ``getCount()`` returns it. Options are pyrivet's defaults
(durability "strict": a reply waits for its commit) unless ``PYRIVET_BENCH_DURABILITY``
is set to ``relaxed`` (state saved at most once a second, as RivetKit does);
``PYRIVET_BENCH_SLEEP_TIMEOUT`` (seconds) replaces the 30 s sleep timeout.
"""

from __future__ import annotations

import os
from typing import Any

from pyrivet import ActorOptions, Registry, actor

_durability = os.environ.get("PYRIVET_BENCH_DURABILITY", "strict")
if _durability not in ("strict", "relaxed"):
    raise SystemExit(f"PYRIVET_BENCH_DURABILITY must be strict or relaxed, got {_durability!r}")

_sleep_timeout = float(os.environ.get("PYRIVET_BENCH_SLEEP_TIMEOUT", "30"))

counter = actor(
    "counter",
    state={"count": 0},
    options=ActorOptions(durability=_durability, sleep_timeout=_sleep_timeout),  # type: ignore[arg-type]
)


@counter.action
def increment(c: Any, n: int = 1) -> int:
    c.state["count"] += n
    c.broadcast("newCount", c.state["count"])
    return int(c.state["count"])


@counter.action(name="getCount")
def get_count(c: Any) -> int:
    return int(c.state["count"])


registry = Registry([counter])
