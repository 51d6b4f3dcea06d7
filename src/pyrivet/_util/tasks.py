"""Supervised background tasks: every task has an owner that logs and cancels it.

pyrivet never calls `asyncio.create_task` bare. A `TaskSupervisor` keeps a strong
reference to each task it starts, logs any exception the task ends with (so nothing
dies silently), and cancels and awaits whatever is left in `aclose()`.

`TaskSupervisor.spawn_eager` runs a coroutine's first step in the caller, as Python
3.12's eager tasks do, and makes a task of it only if it has to wait: most
WebSocket actions finish in that step, and a task (its creation, its registration,
its done callbacks, one more loop iteration) was a tenth of such a call's cost.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .resume import Resumed

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
        #: its table), which counts for the supervisor of every idle WebSocket. The
        #: value is the task's ``then`` callback (see `spawn`), if any.
        self._tasks: dict[asyncio.Task[Any], Callable[[asyncio.Task[Any]], None] | None] = {}
        self._closed = False

    def spawn(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        name: str | None = None,
        then: Callable[[asyncio.Task[Any]], None] | None = None,
    ) -> asyncio.Task[T]:
        """Start ``coro`` as a task owned by this supervisor.

        ``then(task)``: called once the task ended (done, failed or cancelled), right
        after the supervisor's own done callback has logged a failure: what a second
        `add_done_callback` would do, without a second loop callback per task. If it
        raises, the loop's exception handler hears it, as for a done callback.

        Raises:
            RuntimeError: if the supervisor is closed (the coroutine is closed unrun).
        """
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._name}: cannot start a task after aclose()")
        task = (self._loop or asyncio.get_running_loop()).create_task(coro, name=name)
        self._tasks[task] = then
        task.add_done_callback(self._on_done)
        return task

    def spawn_eager(
        self, coro: Coroutine[Any, Any, None], *, name: str | None = None
    ) -> asyncio.Task[None] | None:
        """Run ``coro`` up to its first wait in the caller; if it did not finish, the
        rest runs as a task owned by this supervisor, which is returned (None when it
        finished).

        The first step runs in a copy of the caller's context, which the task keeps,
        as a task's first step would. Unlike in a task, `asyncio.current_task()` is
        the caller's during that step: only for coroutines that do not depend on
        their task before they first wait (a WebSocket action written as a plain
        function). A first step that ended on a bare yield (one loop turn asked for)
        goes on in the task's first step, which is that turn. The result is dropped.
        An exception raised in the first step is logged as `spawn` logs a failed
        task's; a `BaseException` that is not an `Exception` propagates to the caller.

        Raises:
            RuntimeError: if the supervisor is closed (the coroutine is closed unrun).
        """
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._name}: cannot start a task after aclose()")
        context = contextvars.copy_context()
        try:
            waiting_on = context.run(coro.send, None)
        except StopIteration:
            return None
        except Exception as exc:
            log.error("%s: background task %s failed", self._name, name, exc_info=exc)
            return None
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(
            _finish(Resumed(coro, waiting_on, turn_taken=True)), name=name, context=context
        )
        self._tasks[task] = None
        task.add_done_callback(self._on_done)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        tasks = self._tasks
        then = tasks.pop(task, None)
        if not tasks:
            tasks.clear()
        if not task.cancelled():
            exc = task.exception()
            if exc is not None:
                log.error(
                    "%s: background task %s failed", self._name, task.get_name(), exc_info=exc
                )
        if then is not None:
            then(task)

    async def aclose(self) -> None:
        """Cancel every remaining task and wait for them to finish."""
        self._closed = True
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _finish(rest: Resumed[None]) -> None:
    await rest
