"""The runtime's few writes for the inspector (``pyrivet.server.inspector``); its
live hook is `watcher.Watcher`.

* `replace_state`: commit a new state on an awake actor as a unit of work of its own,
  with its own history entry (the inspector's state edit and rewind).
* `clear_queue`: delete every queued message that no receiver holds, in one commit.

Everything runs on the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._codec.values import encode
from ..errors import ActorError, EncodingError, QueueError

if TYPE_CHECKING:
    from .instance import ActorInstance

__all__ = ["BY_INSPECTOR", "clear_queue", "replace_state"]

#: Who the history entries of inspector edits name (`HistoryEntry.by`).
BY_INSPECTOR = "inspector"


def _invalid_state(message: str) -> ActorError:
    return ActorError(message, group="inspector", code="invalid_state")


async def replace_state(
    inst: ActorInstance, value: Any, kind: str, name: str | None, args: list[Any] | None
) -> int:
    """Make ``value`` (plain data) the actor's state and commit it; returns the seq of
    the commit (the current seq when the state did not change: nothing is written).

    The value is converted into the actor's state type first; the commit is durable
    before this returns, whatever the actor's durability mode.

    Raises:
        ActorError: ``inspector/no_state`` (the type keeps no state) or
            ``inspector/invalid_state`` (the value does not fit the state type, cannot
            be encoded, or is above ``max_state_size``); nothing changed.
        CommitError: the commit failed (the actor rolls back to its durable state).
    """
    definition = inst.definition
    if not definition.has_state:
        raise ActorError(f"actor {inst.name!r} keeps no state", group="inspector", code="no_state")
    codec = definition.state_codec
    try:
        new_state = codec.decode_payload(encode(value, "the new state"))
    except EncodingError as exc:
        raise _invalid_state(exc.message) from None
    except Exception as exc:
        raise _invalid_state(
            f"the new state does not fit the state type of actor {inst.name!r}: {exc}"
        ) from None
    snapshot = codec.encode(new_state)
    if len(snapshot) > definition.options.max_state_size:
        raise _invalid_state(
            f"the new state is {len(snapshot)} bytes, above max_state_size "
            f"({definition.options.max_state_size})"
        )
    inst.state = new_state
    ticket = inst.journal.checkpoint(
        kind, name=name, args=encode(args) if args is not None else None, by=BY_INSPECTOR
    )
    if ticket is None:
        return inst.journal.seq
    seq = inst.journal.seq
    await ticket
    return seq


async def clear_queue(inst: ActorInstance) -> int:
    """Delete every queued message no receiver holds; returns how many, once durable."""
    mailbox = inst.mailbox
    if mailbox is None or not mailbox.messages:
        return 0
    taken = mailbox.take(None, len(mailbox.messages), False, object())
    ticket = inst.journal.checkpoint("inspector", name="queue.clear", by=BY_INSPECTOR)
    if ticket is not None:
        await ticket
    # Senders waiting for these messages' completions would wait forever (§13.2).
    inst.svc.queue_waiters.dropped(
        inst.actor_id,
        [m.id for m in taken],
        QueueError(
            "the message was deleted by the inspector's queue clear before it was completed",
            code="completion_waiter_dropped",
        ),
    )
    return len(taken)
