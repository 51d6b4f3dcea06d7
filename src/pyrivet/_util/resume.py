"""`Resumed`: a coroutine whose first step already ran, as an awaitable for the rest.

Running a coroutine's first step by hand (``coro.send(None)``) lets a caller skip work
that only a coroutine that waits needs: a task (`TaskSupervisor.spawn_eager`), a
deadline timer (`run_with_timeout`). When the step did wait, awaiting `Resumed` goes on
exactly as an ``await`` of the coroutine would have: the awaiting task waits on what the
step yielded, then resumes the coroutine with what it was woken with, a value or an
exception (a cancellation), until the coroutine returns.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

__all__ = ["Resumed"]

T = TypeVar("T")


class Resumed(Generic[T]):
    """The rest of ``coro``, whose first step yielded ``waiting_on``. Await it once."""

    __slots__ = ("_coro", "_turn_taken", "_waiting_on")

    def __init__(
        self, coro: Coroutine[Any, Any, T], waiting_on: Any, *, turn_taken: bool = False
    ) -> None:
        """``turn_taken``: a bare yield of the first step (one loop turn asked for) was
        already served by the awaiter starting (a new task's first step is queued behind
        the callbacks scheduled before it), so the coroutine goes on at once instead of
        yielding again (a second task step and one more loop iteration)."""
        self._coro = coro
        #: What the step yielded: a future to wait for, or None (a bare yield).
        self._waiting_on = waiting_on
        self._turn_taken = turn_taken

    def __await__(self) -> Generator[Any, Any, T]:
        coro, waiting_on = self._coro, self._waiting_on
        del self._coro, self._waiting_on
        if waiting_on is None and self._turn_taken:
            try:
                waiting_on = coro.send(None)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
        while True:
            try:
                value = yield waiting_on
            except BaseException as exc:  # thrown into the awaiting task: pass it on
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    waiting_on = coro.send(value)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
