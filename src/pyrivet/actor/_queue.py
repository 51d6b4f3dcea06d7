"""Queues in the definition API: `Queue` (a declared queue) and the ``c.queue`` interface.

```python
@dataclass
class Job:
    id: str

jobs = actor("jobs", queues={"work": Queue(Job, completion=int)})

@jobs.run
async def run(c):
    async for message in c.queue.iter(completable=True):
        await message.complete(len(message.body.id))
```

A `Queue` only describes: the runtime (``pyrivet._runtime.queue``) stores, delivers and
completes messages. Bodies and completions are validated by encoding them and decoding
the bytes into the declared type (plain data, dataclass, msgspec Struct or pydantic
model), so what a receiver gets is exactly what a wake would give it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Protocol

from .._codec.values import ValueCodec
from ..errors import DefinitionError, EncodingError, QueueError

__all__ = ["ActorQueue", "Queue", "QueueMessage", "SendResult", "check_queues"]


class Queue:
    """One queue an actor type accepts messages on.

    Args:
        message: the type bodies are validated and decoded into; None for plain data.
        completion: the type of ``complete(response)`` values; None for plain data.
        can_publish: ``can_publish(c) -> bool`` run for every send from outside the
            actor (clients and other actors); False refuses it with ``auth/forbidden``.
            Sends from inside the actor (``c.queue.send``) are not checked.
    """

    __slots__ = ("_completion", "_message", "can_publish", "completion", "message")

    def __init__(
        self,
        message: Any = None,
        completion: Any = None,
        *,
        can_publish: Callable[[Any], Any] | None = None,
    ) -> None:
        if can_publish is not None and not callable(can_publish):
            raise DefinitionError("Queue(can_publish=...) must be a function taking c")
        self.message = message
        self.completion = completion
        self.can_publish = can_publish
        try:
            self._message = ValueCodec(message)
            self._completion = ValueCodec(completion)
        except TypeError as exc:
            raise DefinitionError(f"Queue: {exc}") from None

    def encode_body(self, name: str, body: Any) -> bytes:
        """The stored form of ``body``, checked against the message type.

        Raises:
            QueueError: ``queue/invalid_payload``: the body cannot be encoded or is not a
                valid value of the message type.
        """
        return _checked(self._message, body, f"the body of a message to queue {name!r}")

    def decode_body(self, data: bytes) -> Any:
        return self._message.decode(data)

    def encode_completion(self, name: str, response: Any) -> bytes:
        """The encoded ``complete(response)`` value, checked against the completion type.

        Raises:
            QueueError: ``queue/invalid_completion_payload``.
        """
        return _checked(
            self._completion,
            response,
            f"the completion of a message of queue {name!r}",
            code="invalid_completion_payload",
        )

    def __repr__(self) -> str:
        return f"Queue(message={self.message!r}, completion={self.completion!r})"


def _checked(codec: ValueCodec, value: Any, what: str, code: str = "invalid_payload") -> bytes:
    tp = codec.type
    try:
        if _is_model_class(tp) and not isinstance(value, tp):
            # A pydantic model type and plain data (as a client sends it): validate it.
            value = tp.model_validate(value)
        data = codec.encode(value, what)
        if codec.type is not None:
            codec.decode(data)
    except EncodingError as exc:
        raise QueueError(exc.message, code=code) from None
    except Exception as exc:
        expected = getattr(codec.type, "__name__", repr(codec.type))
        raise QueueError(f"{what} is not a valid {expected}: {exc}", code=code) from None
    return data


def _is_model_class(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_dump")


def check_queues(
    owner: str, queues: Mapping[str, Queue] | Iterable[str] | None
) -> dict[str, Queue]:
    """The ``queues=`` argument of `actor()` as a dict; names alone mean plain queues.

    Raises:
        DefinitionError: a name is not a non-empty string or a value is not a `Queue`.
    """
    if queues is None:
        return {}
    if isinstance(queues, str):
        raise DefinitionError(
            f"actor {owner!r}: queues= takes a dict of name -> Queue or a list of names, "
            f"got the string {queues!r}"
        )
    items = queues.items() if isinstance(queues, Mapping) else ((n, Queue()) for n in queues)
    found: dict[str, Queue] = {}
    for name, queue in items:
        if not isinstance(name, str) or not name:
            raise DefinitionError(f"actor {owner!r}: queue names are non-empty strings")
        if not isinstance(queue, Queue):
            raise DefinitionError(
                f"actor {owner!r}: queue {name!r} must be declared with Queue(...), got {queue!r}"
            )
        found[name] = queue
    return found


class SendResult(Protocol):
    """What a waiting send returns: ``status`` "completed" (with ``response``) or
    "timedOut"."""

    __slots__ = ()

    @property
    def status(self) -> str: ...
    @property
    def response(self) -> Any: ...


class QueueMessage(Protocol):
    """A received message.

    A message received with ``completable=True`` stays queued (invisible to other
    receivers) until `complete` is called; if the context that received it ends first
    (the action returned or raised, the actor slept or crashed) it is delivered again.
    """

    __slots__ = ()

    @property
    def id(self) -> int:
        """Per actor, from 1, increasing."""
        ...

    @property
    def name(self) -> str: ...
    @property
    def body(self) -> Any: ...
    @property
    def created_at_ms(self) -> int: ...
    @property
    def completable(self) -> bool: ...

    async def complete(self, response: Any = None) -> None:
        """Finish a completable message: delete it durably and hand ``response`` to a
        sender waiting for it.

        Raises:
            QueueError: ``queue/already_completed``, ``queue/complete_not_configured``
                (received without ``completable=True``), or
                ``queue/invalid_completion_payload``.
        """
        ...


class ActorQueue(Protocol):
    """``c.queue``: this actor's durable queues (see docs/queues.md).

    ``names`` restricts a receive to some queues (FIFO by id within them); None takes
    from all. ``timeout`` is in seconds (None waits until a message or shutdown).
    """

    __slots__ = ()

    async def send(self, name: str, body: Any = None) -> QueueMessage:
        """Enqueue a message to this actor; returns once it is durable."""
        ...

    async def enqueue_and_wait(
        self, name: str, body: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Enqueue and wait for its completion response.

        Raises:
            QueueError: ``queue/timed_out`` after ``timeout`` (the message stays queued).
        """
        ...

    async def next(
        self,
        names: Iterable[str] | None = None,
        *,
        timeout: float | None = None,
        completable: bool = False,
    ) -> QueueMessage | None:
        """The next message, waiting for one; None after ``timeout`` or on shutdown."""
        ...

    async def next_batch(
        self,
        names: Iterable[str] | None = None,
        *,
        count: int = 1,
        timeout: float | None = None,
        completable: bool = False,
    ) -> list[QueueMessage]:
        """Up to ``count`` messages, waiting for the first; [] after ``timeout``."""
        ...

    def try_next(
        self, names: Iterable[str] | None = None, *, completable: bool = False
    ) -> QueueMessage | None:
        """The next message if one is queued now, else None; never waits."""
        ...

    def try_next_batch(
        self, names: Iterable[str] | None = None, *, count: int = 1, completable: bool = False
    ) -> list[QueueMessage]:
        """Up to ``count`` messages queued now; never waits."""
        ...

    async def wait_for_names(
        self,
        names: Iterable[str],
        *,
        timeout: float | None = None,
        completable: bool = False,
    ) -> QueueMessage:
        """The next message of one of ``names``.

        Raises:
            QueueError: ``queue/timed_out`` after ``timeout``.
        """
        ...

    def iter(
        self, names: Iterable[str] | None = None, *, completable: bool = False
    ) -> AsyncIterator[QueueMessage]:
        """Messages as they arrive, until the actor shuts down (for ``run`` loops)."""
        ...
