"""The runtime's few hooks for the inspector (``pyrivet.server.inspector``).

* `Watcher`: what a live inspector attaches to one actor. `ActorInstance.watcher` is
  None while nobody watches, so an uninspected actor pays one ``is None`` test per
  commit and per connection change, nothing more.
* `replace_state`: commit a new state on an awake actor as a unit of work of its own,
  with its own history entry (the inspector's state edit and rewind).
* `clear_queue`: delete every queued message that no receiver holds, in one commit.

Everything runs on the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .._codec.values import encode
from ..errors import ActorError, EncodingError
from ..storage._base import CommitRecord
from .writes import Outgoing

if TYPE_CHECKING:
    from .instance import ActorInstance

__all__ = ["Watcher", "clear_queue", "replace_state"]

#: Who the history entries of inspector edits name (`HistoryEntry.by`).
BY_INSPECTOR = "inspector"


class Watcher(Protocol):
    """A live inspector of one actor. Both methods run on the event loop, inside the
    runtime's own work (a commit's completion, a connection opening or closing): they
    must only note what changed and return at once. An exception is not caught: it
    would surface in the committer's or the connection's code, so implementations
    must not raise."""

    __slots__ = ()

    def committed(self, record: CommitRecord) -> None:
        """``record`` (one commit of the actor: state, history entry, ops) is durable."""
        ...

    def connections_changed(self) -> None:
        """A connection of the actor opened or closed."""
        ...

    def emitted(self, outgoing: Outgoing) -> None:
        """An event was released to the actor's connections: ``(target connection or
        None for a broadcast, name, encoded argument list)``."""
        ...


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
    return len(taken)
