"""`CompletionWaiters`: queue senders waiting for a completion, one table per runtime.

They are kept outside the actor's mailbox so that a sender keeps waiting while the
actor sleeps and wakes: whichever instance completes the message resolves the waiter.
Everything runs on the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["CompletionWaiters"]


class CompletionWaiters:
    """Senders waiting for completions, by ``(actor_id, message_id)``; one per runtime.

    Also counts sends to undeclared queue names (accepted and dropped, as RivetKit does).
    """

    __slots__ = ("dropped_unknown", "waiters")

    def __init__(self) -> None:
        self.waiters: dict[tuple[str, int], asyncio.Future[Any]] = {}
        #: Sends to a queue name the actor type does not declare, since start.
        self.dropped_unknown = 0

    def register(self, actor_id: str, message_id: int) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters[actor_id, message_id] = fut
        return fut

    def forget(self, actor_id: str, message_id: int) -> None:
        self.waiters.pop((actor_id, message_id), None)

    def actor_destroyed(self, actor_id: str, error: BaseException) -> None:
        """The actor is gone with its queue: its waiting senders get ``error``."""
        for key in [k for k in self.waiters if k[0] == actor_id]:
            fut = self.waiters.pop(key)
            if not fut.done():
                fut.set_exception(error)

    def dropped(self, actor_id: str, message_ids: list[int], error: BaseException) -> None:
        """These messages were deleted without a completion: their senders get ``error``."""
        for message_id in message_ids:
            fut = self.waiters.pop((actor_id, message_id), None)
            if fut is not None and not fut.done():
                fut.set_exception(error)

    def completed(self, actor_id: str, message_id: int, response: Any) -> None:
        fut = self.waiters.pop((actor_id, message_id), None)
        if fut is not None and not fut.done():
            fut.set_result(response)
