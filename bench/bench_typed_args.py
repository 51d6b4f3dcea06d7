"""What typed action arguments and results cost per in-process call.

    python bench/bench_typed_args.py                   # every variant, prints a table
    python bench/bench_typed_args.py --only int --calls 20000

Each variant is one action on the memory driver with relaxed durability (no disk, so
the figure is the runtime's and the client's CPU alone), called sequentially on one
actor through ``Client(runtime)``:

* ``untyped``: ``bump(c, amount)``, no annotation (no conversion at all);
* ``int``: ``bump(c, amount: int)``, a scalar (the common case);
* ``optional``: ``bump(c, amount: int | None)``, a union (converted by msgspec);
* ``dataclass`` / ``struct`` / ``pydantic``: one argument of that type, which arrives
  as a dict and is converted before the action runs;
* ``typed-result``: ``handle.call(fn)`` of an action returning a dataclass, which the
  client converts back from plain data.

To compare variants by instruction count (quieter than wall-clock on a shared
machine), run one variant under callgrind at two call counts and divide the
difference by the difference in calls.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pydantic

from pyrivet import ActorOptions, Client, Registry, actor
from pyrivet.storage import MemoryDriver


@dataclass
class Point:
    x: int
    y: int


class PointStruct(msgspec.Struct):
    x: int
    y: int


class PointModel(pydantic.BaseModel):
    x: int
    y: int


bench = actor("bench", state={"n": 0}, options=ActorOptions(durability="relaxed"))


@bench.action
def untyped(c, amount):  # type: ignore[no-untyped-def]
    c.state["n"] += 1
    return c.state["n"]


@bench.action(name="int")
def int_arg(c: Any, amount: int) -> int:
    c.state["n"] += amount
    return int(c.state["n"])


@bench.action(name="optional")
def optional_arg(c: Any, amount: int | None) -> int:
    c.state["n"] += amount or 0
    return int(c.state["n"])


@bench.action(name="dataclass")
def dataclass_arg(c: Any, point: Point) -> int:
    return point.x


@bench.action(name="struct")
def struct_arg(c: Any, point: PointStruct) -> int:
    return point.x


@bench.action(name="pydantic")
def pydantic_arg(c: Any, point: PointModel) -> int:
    return point.x


@bench.action(name="typed-result")
def typed_result(c: Any) -> Point:
    return Point(1, 2)


#: Variant -> the arguments each call passes.
ARGS: dict[str, list[Any]] = {
    "untyped": [1],
    "int": [1],
    "optional": [1],
    "dataclass": [{"x": 1, "y": 2}],
    "struct": [{"x": 1, "y": 2}],
    "pydantic": [{"x": 1, "y": 2}],
    "typed-result": [],
}


async def per_call(variant: str, calls: int) -> float:
    """Seconds per call of ``variant``, after a warm-up."""
    async with Registry([bench]).runtime(storage=MemoryDriver()) as runtime:
        handle = Client(runtime).get_or_create("bench", ["one"])
        args = ARGS[variant]
        call: Callable[[], Any]
        if variant == "typed-result":

            def call() -> Any:
                return handle.call(typed_result)

        else:

            def call() -> Any:
                return handle.action(variant, *args)

        for _ in range(200):
            await call()
        start = time.perf_counter()
        for _ in range(calls):
            await call()
        return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=list(ARGS), help="run only this variant")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(
        f"# typed arguments ({platform.python_implementation()} {platform.python_version()}, "
        f"memory driver, relaxed, {args.calls} calls, median of {args.runs})"
    )
    print(f"{'variant':<14} {'µs per call':>12}")
    for variant in [args.only] if args.only else list(ARGS):
        seconds = statistics.median(
            asyncio.run(per_call(variant, args.calls)) for _ in range(args.runs)
        )
        print(f"{variant:<14} {seconds * 1e6:>12.2f}")


if __name__ == "__main__":
    main()
