"""`Mailbox`: one awake actor's durable queue; `QueueImpl`: ``c.queue`` over it.

Everything runs on the event loop. The mailbox holds the committed messages (loaded on
wake) plus those sent since, in id order, and stages every change in the actor's
journal as a `Contribution`, so enqueues and deletes land in the same group commit as
the state change they go with:

* send: the message is added (visible to receivers at once) and put in the next
  commit; the sender's acknowledgement waits until that commit is durable.
* non-completable receive: the message leaves the mailbox and its delete is staged
  (at-most-once, as in RivetKit).
* completable receive: the message stays, *held* by the receiving context: other
  receivers skip it (an in-flight lock RivetKit lacks). ``complete`` deletes it; if the
  context ends first (the action returned or raised) the hold is released and the
  message is delivered again. On sleep or crash the mailbox is dropped; the durable
  message is still stored and the next wake delivers it again.

Completion waiters (senders with ``wait=True``) live in `CompletionWaiters` (held by
`Services`), not in the mailbox: a sender keeps waiting across a sleep of the actor, and
gets the response whenever the message is completed, while it still waits.

If a commit carrying queue changes fails, the changes are undone in the mailbox (sent
messages vanish and their senders get the error; received messages come back).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

from .._codec.values import decode
from .._util.timeouts import run_with_timeout
from ..actor._definition import ActorDefinition
from ..actor._queue import ActorQueue, Queue, QueueMessage, SendResult
from ..errors import ActorStoppingError, CommitError, ForbiddenError, QueueError
from ..storage._base import CommitRecord, QueueMessageRecord, StoredQueue
from .journal import Journal
from .lifecycle import Lifecycle
from .services import Services
from .writes import Contribution

__all__ = [
    "Mailbox",
    "MailboxHost",
    "QueueImpl",
    "ReceivedMessage",
    "SendOutcome",
    "check_can_publish",
    "publish",
]

log = logging.getLogger("pyrivet.queue")


class MailboxHost(Protocol):
    """What a mailbox needs of its actor (implemented by `ActorInstance`)."""

    __slots__ = ()

    actor_id: str
    definition: ActorDefinition[Any]
    svc: Services
    journal: Journal
    life: Lifecycle | None

    def became_idle(self) -> None: ...

    def accepts_saves(self) -> bool:
        """Whether changes can still be committed (running or stopping)."""
        ...

    @property
    def log_fields(self) -> dict[str, Any]:
        """``extra`` for log records about this actor: actor, actor_key, actor_id."""
        ...


class _QueueOps(Contribution):
    """The queue changes going into one commit of the actor."""

    __slots__ = ("box", "deletes", "done", "puts", "removed", "responses", "sealed")

    def __init__(self, box: Mailbox) -> None:
        self.box = box
        self.puts: list[QueueMessageRecord] = []
        self.deletes: list[int] = []
        #: Deleted messages, restored if the commit fails.
        self.removed: list[QueueMessageRecord] = []
        #: (message id, encoded response) to hand to waiting senders once durable.
        self.responses: list[tuple[int, bytes]] = []
        self.done: asyncio.Future[None] | None = None
        #: Set once written into a commit: later changes go into the next one.
        self.sealed = False

    def durable(self) -> asyncio.Future[None]:
        if self.done is None:
            self.done = asyncio.get_running_loop().create_future()
        return self.done

    def write(self, record: CommitRecord, ops: list[Any]) -> None:
        self.sealed = True
        if self.box.staged is self:
            self.box.staged = None
        if self.puts:
            record.queue_puts = (*record.queue_puts, *self.puts)
        if self.deletes:
            record.queue_deletes = (*record.queue_deletes, *self.deletes)
        ops.extend(("queue.put", m.id, m.name) for m in self.puts)
        ops.extend(("queue.delete", i) for i in self.deletes)

    def settled(self, error: BaseException | None) -> None:
        box = self.box
        if box.staged is self:
            box.staged = None
        if error is None:
            waiters = box.host.svc.queue_waiters
            for message_id, response in self.responses:
                waiters.completed(box.host.actor_id, message_id, decode(response))
        else:
            box.undo(self)
        done = self.done
        if done is not None and not done.done():
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(CommitError(f"the queue change could not be saved: {error}"))
                done.exception()  # nobody may be waiting any more


class Mailbox:
    """One awake actor's queue; see the module docstring."""

    __slots__ = (
        "closed",
        "held",
        "held_by",
        "host",
        "last_id",
        "messages",
        "staged",
        "waiters",
    )

    def __init__(self, host: MailboxHost, stored: StoredQueue) -> None:
        self.host = host
        self.last_id = stored.last_id
        #: Queued messages by id; dicts keep insertion order and ids only grow.
        self.messages: dict[int, QueueMessageRecord] = {m.id: m for m in stored.messages}
        #: Message id -> the context holding it (completable receives not completed).
        self.held: dict[int, object] = {}
        self.held_by: dict[object, set[int]] = {}
        self.waiters: list[asyncio.Future[None]] = []
        self.staged: _QueueOps | None = None
        self.closed = False

    # -- staging -------------------------------------------------------------------

    def _ops(self) -> _QueueOps:
        ops = self.staged
        if ops is None or ops.sealed:
            ops = self.staged = _QueueOps(self)
            self.host.journal.contribute(ops)
        return ops

    def enqueue(self, name: str, body: bytes) -> tuple[QueueMessageRecord, asyncio.Future[None]]:
        """Add a message; returns it and a future resolved once it is durable.

        Raises:
            QueueError: ``queue/full`` or ``queue/message_too_large``; nothing changed.
            ActorStoppingError: the actor has stopped.
        """
        if not self.host.accepts_saves():
            raise ActorStoppingError(f"actor {self.host.definition.name!r} has stopped")
        opts = self.host.definition.options
        if len(self.messages) >= opts.max_queue_size:
            raise QueueError(
                f"Queue is full. Limit is {opts.max_queue_size} messages.", code="full"
            )
        size = len(body) + len(name.encode())
        if size > opts.max_queue_message_size:
            raise QueueError(
                f"the message to queue {name!r} is {size} bytes encoded, above "
                f"max_queue_message_size ({opts.max_queue_message_size}); send a smaller "
                "body or raise ActorOptions.max_queue_message_size",
                code="message_too_large",
            )
        self.last_id += 1
        record = QueueMessageRecord(self.last_id, name, body, self.host.svc.now_ms())
        self.messages[record.id] = record
        ops = self._ops()
        ops.puts.append(record)
        self._notify()
        return record, ops.durable()

    def take(
        self, names: frozenset[str] | None, count: int, completable: bool, holder: object
    ) -> list[ReceivedMessage]:
        """Up to ``count`` visible messages (of ``names``), lowest ids first; never waits.

        Raises:
            QueueError: ``queue/previous_message_not_completed``: ``holder`` still holds
                a completable message.
        """
        if completable and self.held_by.get(holder):
            raise QueueError(
                "the previous completable message was not completed; call "
                "message.complete() before receiving the next one",
                code="previous_message_not_completed",
            )
        found: list[QueueMessageRecord] = []
        for record in self.messages.values():
            if record.id in self.held or (names is not None and record.name not in names):
                continue
            found.append(record)
            if len(found) >= count:
                break
        if not found:
            return []
        queues = self.host.definition.queues
        if completable:
            ids = self.held_by.setdefault(holder, set())
            for record in found:
                self.held[record.id] = holder
                ids.add(record.id)
        else:
            ops = self._ops()
            for record in found:
                del self.messages[record.id]
                ops.deletes.append(record.id)
                ops.removed.append(record)
        return [
            ReceivedMessage(self, r, _decode_body(queues.get(r.name), r.body), completable)
            for r in found
        ]

    def complete(self, message: ReceivedMessage, response: bytes) -> asyncio.Future[None]:
        """Delete a held message and stage ``response`` for its waiting sender."""
        if not self.host.accepts_saves():
            raise ActorStoppingError(
                f"actor {self.host.definition.name!r} stopped before the message was "
                "completed; it will be delivered again"
            )
        record = message.record
        holder = self.held.pop(record.id, None)
        if holder is not None:
            ids = self.held_by.get(holder)
            if ids is not None:
                ids.discard(record.id)
                if not ids:
                    del self.held_by[holder]
        self.messages.pop(record.id, None)
        ops = self._ops()
        ops.deletes.append(record.id)
        ops.removed.append(record)
        ops.responses.append((record.id, response))
        return ops.durable()

    def consume(self, holder: object) -> None:
        """Delete the messages ``holder`` holds, in the next commit, answering nobody.

        The workflow binding receives with a hold and consumes in the commit that
        records the receive, so the message and its record are durable together.
        """
        ids = self.held_by.pop(holder, None)
        if not ids:
            return
        ops = self._ops()
        for message_id in sorted(ids):
            self.held.pop(message_id, None)
            record = self.messages.pop(message_id, None)
            ops.deletes.append(message_id)
            if record is not None:
                ops.removed.append(record)

    def release(self, holder: object) -> None:
        """``holder`` (a context) ended: its uncompleted messages become visible again."""
        ids = self.held_by.pop(holder, None)
        if not ids:
            return
        for message_id in ids:
            self.held.pop(message_id, None)
        self._notify()

    def undo(self, ops: _QueueOps) -> None:
        """A commit with ``ops`` failed: drop its sends, bring back its receives."""
        for record in ops.puts:
            self.messages.pop(record.id, None)
        if ops.removed:
            restored = {**self.messages, **{r.id: r for r in ops.removed}}
            self.messages = dict(sorted(restored.items()))
            self._notify()

    # -- waiting -------------------------------------------------------------------

    def _notify(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        """The actor is shutting down: end every wait (they return nothing). Sends and
        completions still work until the final save (e.g. in ``on_sleep``)."""
        self.closed = True
        self._notify()

    async def wait(self, timeout_at: float | None) -> bool:
        """Wait for a change (a send, a release) until ``timeout_at`` (monotonic);
        False if the deadline passed or the actor is shutting down."""
        if self.closed:
            return False
        clock = self.host.svc.clock
        remaining = None if timeout_at is None else timeout_at - clock.monotonic()
        if remaining is not None and remaining <= 0:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        life = self.host.life
        in_run = life is not None and life.run_task is asyncio.current_task()
        if life is not None and in_run:
            # A run loop waiting for messages does not keep the actor awake (RivetKit:
            # queue waits are sleep-compatible); a send wakes it again.
            life.run_parked += 1
            self.host.became_idle()
        try:
            await run_with_timeout(clock, remaining, waiter)
        except TimeoutError:
            return False
        finally:
            if life is not None and in_run:
                life.run_parked -= 1
        return not self.closed


def _decode_body(queue: Queue | None, body: bytes) -> Any:
    return decode(body) if queue is None else queue.decode_body(body)


async def check_can_publish(queue: Queue, ctx: Any, name: str) -> None:
    """Run ``can_publish``; raise `ForbiddenError` unless it returned True.

    Raises:
        ForbiddenError: it returned False (or anything but a bool; it must say yes).
    """
    hook = queue.can_publish
    if hook is None:
        return
    allowed = hook(ctx)
    if inspect.isawaitable(allowed):
        allowed = await allowed
    if allowed is not True:
        if not isinstance(allowed, bool):
            log.error("can_publish of queue %r returned %r, not a bool: refused", name, allowed)
        raise ForbiddenError(f"sending to queue {name!r} is not allowed")


class ReceivedMessage(QueueMessage):
    """See `pyrivet.actor.QueueMessage`."""

    __slots__ = ("_body", "_box", "_completable", "_done", "record")

    def __init__(self, box: Mailbox, record: QueueMessageRecord, body: Any, completable: bool):
        self._box = box
        self.record = record
        self._body = body
        self._completable = completable
        self._done = False

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def body(self) -> Any:
        return self._body

    @property
    def created_at_ms(self) -> int:
        return self.record.created_at_ms

    @property
    def completable(self) -> bool:
        return self._completable

    async def complete(self, response: Any = None) -> None:
        if not self._completable:
            raise QueueError(
                "this message was received without completable=True; it was deleted when "
                "received and cannot be completed",
                code="complete_not_configured",
            )
        if self._done:
            raise QueueError(f"message {self.id} was already completed", code="already_completed")
        queue = self._box.host.definition.queues.get(self.name) or Queue()
        data = queue.encode_completion(self.name, response)
        durable = self._box.complete(self, data)
        self._done = True
        await durable

    def __repr__(self) -> str:
        return f"<QueueMessage {self.id} {self.name!r}>"


class _Sent(ReceivedMessage):
    """What ``c.queue.send`` returns: the message as stored, not a receive."""

    __slots__ = ()

    async def complete(self, response: Any = None) -> None:
        raise QueueError(
            "a sent message cannot be completed; the receiver completes it",
            code="complete_not_configured",
        )


class QueueImpl(ActorQueue):
    """``c.queue``: receives on behalf of one context (which holds its completable
    messages until it completes them or ends)."""

    __slots__ = ("_box", "_holder")

    def __init__(self, box: Mailbox, holder: object) -> None:
        self._box = box
        self._holder = holder

    def _queue(self, name: str) -> Queue:
        queue = self._box.host.definition.queues.get(name)
        if queue is None:
            known = sorted(self._box.host.definition.queues)
            raise QueueError(
                f"actor {self._box.host.definition.name!r} has no queue {name!r} "
                f"(declared: {known}); declare it in actor(..., queues=...)",
                code="unknown_queue",
            )
        return queue

    async def send(self, name: str, body: Any = None) -> QueueMessage:
        record, durable = self._box.enqueue(name, self._queue(name).encode_body(name, body))
        await durable
        return _Sent(self._box, record, body, False)

    async def enqueue_and_wait(
        self, name: str, body: Any = None, *, timeout: float | None = None
    ) -> Any:
        box = self._box
        record, durable = box.enqueue(name, self._queue(name).encode_body(name, body))
        waiters = box.host.svc.queue_waiters
        actor_id = box.host.actor_id
        waiter = waiters.register(actor_id, record.id)
        try:
            await durable
            return await run_with_timeout(box.host.svc.clock, timeout, waiter)
        except TimeoutError:
            raise QueueError(
                f"no completion for message {record.id} of queue {name!r} within {timeout} s; "
                "the message stays queued",
                code="timed_out",
            ) from None
        finally:
            waiters.forget(actor_id, record.id)

    def _names(self, names: Iterable[str] | None) -> frozenset[str] | None:
        if names is None:
            return None
        if isinstance(names, str):
            return frozenset((names,))
        return frozenset(names)

    def try_next(
        self, names: Iterable[str] | None = None, *, completable: bool = False
    ) -> QueueMessage | None:
        found = self._box.take(self._names(names), 1, completable, self._holder)
        return found[0] if found else None

    def try_next_batch(
        self, names: Iterable[str] | None = None, *, count: int = 1, completable: bool = False
    ) -> list[QueueMessage]:
        _check_count(count)
        return list(self._box.take(self._names(names), count, completable, self._holder))

    async def next_batch(
        self,
        names: Iterable[str] | None = None,
        *,
        count: int = 1,
        timeout: float | None = None,
        completable: bool = False,
    ) -> list[QueueMessage]:
        _check_count(count)
        box = self._box
        wanted = self._names(names)
        deadline = None if timeout is None else box.host.svc.clock.monotonic() + timeout
        while True:
            found = box.take(wanted, count, completable, self._holder)
            if found:
                return list(found)
            if not await box.wait(deadline):
                return []

    async def next(
        self,
        names: Iterable[str] | None = None,
        *,
        timeout: float | None = None,
        completable: bool = False,
    ) -> QueueMessage | None:
        found = await self.next_batch(names, count=1, timeout=timeout, completable=completable)
        return found[0] if found else None

    async def wait_for_names(
        self,
        names: Iterable[str],
        *,
        timeout: float | None = None,
        completable: bool = False,
    ) -> QueueMessage:
        found = await self.next(names, timeout=timeout, completable=completable)
        if found is None:
            if self._box.closed:
                raise ActorStoppingError("the actor is shutting down")
            raise QueueError(
                f"no message on {sorted(self._names(names) or ())} within {timeout} s",
                code="timed_out",
            )
        return found

    async def iter(
        self, names: Iterable[str] | None = None, *, completable: bool = False
    ) -> AsyncIterator[QueueMessage]:
        while True:
            found = await self.next(names, completable=completable)
            if found is None:
                return
            yield found


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise QueueError(f"count must be a whole number of at least 1, got {count!r}")


class SendOutcome(SendResult):
    """The result of a send from outside the actor: "completed" (with the response of
    a waited-for completion) or "timedOut"."""

    __slots__ = ("_response", "_status")

    def __init__(self, status: str, response: Any = None) -> None:
        self._status = status
        self._response = response

    @property
    def status(self) -> str:
        return self._status

    @property
    def response(self) -> Any:
        return self._response

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SendOutcome)
            and other._status == self._status
            and other._response == self._response
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SendOutcome({self._status!r}, {self._response!r})"


async def publish(
    host: MailboxHost,
    mailbox: Mailbox | None,
    ctx: Any,
    name: str,
    body: Any,
    wait: bool,
    timeout: float | None,
) -> SendOutcome:
    """A send from outside the actor (a client or another actor) to awake ``host``.

    Returns once the message is durable (and, with ``wait``, once it was completed or
    ``timeout`` seconds passed: the message then stays queued). A name the actor type
    does not declare is accepted and dropped, as RivetKit does, but logged and counted.

    Raises:
        ForbiddenError: ``can_publish`` refused.
        QueueError: the body is invalid, the queue is full, the message too large.
        ActorStoppingError: the actor stopped before the message was accepted (retry).
    """
    definition = host.definition
    waiters = host.svc.queue_waiters
    queue = definition.queues.get(name)
    if queue is None:
        waiters.dropped_unknown += 1
        log.warning(
            "actor %s (%s): dropped a message to undeclared queue %r (declared: %s)",
            definition.name,
            host.actor_id,
            name,
            sorted(definition.queues),
            extra=host.log_fields,
        )
        return SendOutcome("completed")
    await check_can_publish(queue, ctx, name)
    if mailbox is None:
        raise ActorStoppingError(f"actor {definition.name!r} is not running")
    record, durable = mailbox.enqueue(name, queue.encode_body(name, body))
    if not wait:
        await durable
        return SendOutcome("completed")
    waiter = waiters.register(host.actor_id, record.id)
    try:
        await durable
        response = await run_with_timeout(host.svc.clock, timeout, waiter)
    except TimeoutError:
        return SendOutcome("timedOut")
    finally:
        waiters.forget(host.actor_id, record.id)
    return SendOutcome("completed", response)
