"""`MemoryWorkflowHost`: a complete in-memory host, the reference for real ones.

Its durable side is a `MemoryWorkflowStore` (history records, the committed state, a
queue); the host is the live side (the working state steps change). A flush commits
the history writes **and** a copy of the working state in one step, as the actor
binding commits them in one transaction. Dropping a host (and its engine) and building
a new one over the same store is a crash: whatever was not flushed is gone.

For crash tests, `crash_at` makes the host raise `SimulatedCrash` at its N-th await
point (before and after each flush, in each wait, and wherever a step calls
``await step.point()``), so a test can crash a run at every await in turn.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._codec import values
from .._util.clock import Clock
from ..errors import WorkflowEvicted
from ._host import QueueMessage, StepInfo, WorkflowHost, Writes

__all__ = ["MemoryStepContext", "MemoryWorkflowHost", "MemoryWorkflowStore", "SimulatedCrash"]


class SimulatedCrash(BaseException):
    """Raised by `MemoryWorkflowHost` at the await point chosen by ``crash_at``."""


@dataclass
class MemoryWorkflowStore:
    """What survives a crash: history records, committed state, queue, completions."""

    records: dict[str, bytes] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    queue: list[QueueMessage] = field(default_factory=list)
    completions: dict[int, Any] = field(default_factory=dict)
    flushes: int = 0
    next_message_id: int = 1
    _arrived: asyncio.Event | None = None

    def send(self, name: str, body: Any, created_at: float = 0.0) -> int:
        """Enqueue a message durably; its id."""
        message_id = self.next_message_id
        self.next_message_id += 1
        # Stored form, as a real queue would give it back.
        stored = values.decode(values.encode(body, "queue message body"))
        self.queue.append(QueueMessage(message_id, name, stored, created_at))
        if self._arrived is not None:
            self._arrived.set()
        return message_id

    def arrived(self) -> asyncio.Event:
        if self._arrived is None:
            self._arrived = asyncio.Event()
        return self._arrived


@dataclass
class MemoryStepContext:
    """The step context `MemoryWorkflowHost` gives step callbacks."""

    state: dict[str, Any]
    info: StepInfo
    host: MemoryWorkflowHost

    async def point(self) -> None:
        """An await point inside a step body (where `crash_at` may strike)."""
        await self.host.point(f"in step {self.info.name}")


class MemoryWorkflowHost(WorkflowHost[MemoryStepContext]):
    """A `WorkflowHost` keeping everything in a `MemoryWorkflowStore`.

    Args:
        clock: the clock (a `MockClock` in tests).
        store: the durable side; a new host over the same store is a restart.
        evict_sleeps: unload instead of waiting (`sleep_until` and empty `receive`
            raise `WorkflowEvicted`; ``wake_at`` tells when to run again).
        crash_at: raise `SimulatedCrash` at this await point (0 = the first); None: never.
    """

    def __init__(
        self,
        clock: Clock,
        store: MemoryWorkflowStore | None = None,
        *,
        evict_sleeps: bool = False,
        crash_at: int | None = None,
    ) -> None:
        self._clock = clock
        self.store = store if store is not None else MemoryWorkflowStore()
        self.state: dict[str, Any] = copy.deepcopy(self.store.state)
        self.evict_sleeps = evict_sleeps
        self.crash_at = crash_at
        self.points = 0
        self.point_labels: list[str] = []
        self.wake_at: float | None = None
        self.error_contexts = 0
        #: ("started" | "finished", step name, store.flushes at that moment), in order.
        self.step_windows: list[tuple[str, str, int]] = []
        self._consumed: list[int] = []

    @property
    def clock(self) -> Clock:
        return self._clock

    async def point(self, label: str) -> None:
        """Count an await point; crash here if it is the chosen one."""
        index = self.points
        self.points += 1
        self.point_labels.append(label)
        if index == self.crash_at:
            raise SimulatedCrash(label)
        await asyncio.sleep(0)

    async def load(self) -> Mapping[str, bytes]:
        return dict(self.store.records)

    def step_context(self, step: StepInfo) -> MemoryStepContext:
        self.step_windows.append(("started", step.name, self.store.flushes))
        return MemoryStepContext(self.state, step, self)

    def step_finished(self, step: StepInfo) -> None:
        self.step_windows.append(("finished", step.name, self.store.flushes))

    def error_context(self) -> MemoryStepContext:
        self.error_contexts += 1
        return MemoryStepContext(self.state, StepInfo("on_error", (), 0, "on_error"), self)

    async def flush(self, writes: Writes) -> None:
        # The messages received before this call: the engine recorded them in ``writes``.
        consumed = set(self._consumed)
        self._consumed.clear()
        await self.point("before flush")
        # One atomic step: history writes, the working state, consumed messages.
        for key, data in writes.items():
            if data is None:
                self.store.records.pop(key, None)
            else:
                self.store.records[key] = data
        self.store.state = copy.deepcopy(self.state)
        self.store.queue = [m for m in self.store.queue if m.id not in consumed]
        self.store.flushes += 1
        await self.point("after flush")

    async def sleep_until(self, deadline: float) -> None:
        await self.point("sleep")
        if self.evict_sleeps:
            self.wake_at = deadline
            raise WorkflowEvicted()
        await self._clock.sleep(deadline - self._clock.now())

    async def receive(
        self, names: Sequence[str] | None, count: int, deadline: float | None, completable: bool
    ) -> Sequence[QueueMessage]:
        await self.point("receive")
        arrived = self.store.arrived()
        while True:
            taken = set(self._consumed)
            ready = [
                m
                for m in self.store.queue
                if m.id not in taken and (names is None or m.name in names)
            ][:count]
            if ready:
                if not completable:
                    # Deleted by the flush that records them: a crash before it keeps them.
                    self._consumed.extend(m.id for m in ready)
                return ready
            if deadline is not None and self._clock.now() >= deadline:
                return []
            if self.evict_sleeps:
                self.wake_at = deadline
                raise WorkflowEvicted()
            arrived.clear()
            timer = None
            if deadline is not None:
                timer = self._clock.call_later(deadline - self._clock.now(), arrived.set)
            try:
                await arrived.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    async def complete_message(self, message_id: int, response: Any) -> None:
        if message_id in self.store.completions:
            return
        self.store.queue = [m for m in self.store.queue if m.id != message_id]
        self.store.completions[message_id] = response
