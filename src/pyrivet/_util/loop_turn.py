"""`LOOP_TURN`: ``await LOOP_TURN`` gives the event loop one turn.

It does what ``await asyncio.sleep(0)`` does (the awaiting task is rescheduled at the
end of the current iteration, after the callbacks already queued) without that
coroutine's two frames; used on hot paths that must let a queued callback (the
committer's flush) run before they go on. Runs in whatever task awaits it; it cannot
raise, and a cancellation arrives at the ``await`` as with ``sleep(0)``.
"""

from __future__ import annotations

from collections.abc import Generator

__all__ = ["LOOP_TURN"]


class _LoopTurn:
    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        yield  # a bare yield: the task reschedules itself with `call_soon`


LOOP_TURN = _LoopTurn()
