"""Supervised background tasks: every task has an owner that logs and cancels it.

pyrivet never calls `asyncio.create_task` bare. A `TaskSupervisor` keeps a strong
reference to each task it starts, logs any exception the task ends with (so nothing
dies silently), and cancels and awaits whatever is left in `aclose()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["TaskSupervisor"]

T = TypeVar("T")
log = logging.getLogger(__name__)


class TaskSupervisor:
    """Owns a set of tasks for the lifetime of one component (a runtime, a server)."""

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """``loop``: the loop every task of this supervisor runs on, when the owner knows
        it (`spawn` then skips `asyncio.get_running_loop`, a ``getpid`` system call in
        Python 3.11; a WebSocket connection spawns a task per action)."""
        self._name = name
        self._loop = loop
        #: A dict, not a set: once empty it is cleared back to 64 bytes (a set keeps
        #: its table), which counts for the supervisor of every idle WebSocket.
        self._tasks: dict[asyncio.Task[Any], None] = {}
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Start ``coro`` as a task owned by this supervisor.

        Raises:
            RuntimeError: if the supervisor is closed (the coroutine is closed unrun).
        """
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._name}: cannot start a task after aclose()")
        task = (self._loop or asyncio.get_running_loop()).create_task(coro, name=name)
        self._tasks[task] = None
        task.add_done_callback(self._on_done)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        tasks = self._tasks
        tasks.pop(task, None)
        if not tasks:
            tasks.clear()
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s: background task %s failed", self._name, task.get_name(), exc_info=exc)

    async def aclose(self) -> None:
        """Cancel every remaining task and wait for them to finish."""
        self._closed = True
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
