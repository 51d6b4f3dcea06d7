"""Bringing a woken actor's stored state to the version its type declares.

`restore_state` runs inside `ActorInstance.wake`, on the event loop, after the stored
snapshot is read and before anything else reads the state: before create_vars,
on_wake, ``run`` and every request (the actor is still loading). For a snapshot of an
older version it

1. decodes the stored state as plain data (the old shape need not fit today's type),
2. runs ``migrations[v]`` for each version from the stored one up (``1->2``, ``2->3``),
3. decodes the last result into the state type (the check that the shape is right),
4. submits the migrated state's commit with a ``migrate`` history entry (``args`` =
   ``[stored_version, state_version]``); the wake waits until it is durable.

Only then do the hooks run. ``on_state_change`` sees the migrated state, as it sees the
creation commit, before create_vars.

Every failure (a migration raised or returned something unstorable, the result does
not fit the type, the stored version is newer than the code, a stored state of the
current version does not fit a type whose shape changed without a new version) raises
`StateMigrationError` naming the actor, the versions and the step, and writes nothing:
the stored state stays as it was, so deploying a fix and retrying wakes the actor.
The error reaches the caller that woke the actor; the runtime drops the half-started
instance, so the next request tries again. A failed migrate commit fails the wake with
`CommitError`, equally without a change.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from .._codec.values import decode, encode
from .._codec.versioned import unwrap
from ..actor._definition import ActorDefinition
from ..errors import EncodingError, StateMigrationError
from .committer import CommitTicket
from .journal import Journal

__all__ = ["restore_state"]

log = logging.getLogger("pyrivet.actor")

#: Longest validation message kept in the error (a big state makes long ones).
_DETAIL_MAX = 500


def restore_state(journal: Journal, snapshot: bytes) -> CommitTicket | None:
    """Set the journal's owner's state from ``snapshot``, migrating it first if it is
    of an older version (see the module docstring).

    Returns None when the stored version is the current one. After a migration, the
    ticket of its commit: the caller awaits it before any hook runs (it raises
    `CommitError` if the write failed, in which case nothing was written).

    Raises:
        StateMigrationError: the stored state cannot become a state of the current
            version; nothing was written.
    """
    owner = journal.owner
    d = owner.definition
    try:
        stored, payload = unwrap(snapshot)
    except ValueError as exc:
        raise _error(owner.actor_id, d, 0, "decode", f"{exc}.") from None
    current = d.state_version
    if stored == current:
        try:
            owner.state = d.state_codec.decode_payload(payload)
        except Exception as exc:
            raise _unfit(owner.actor_id, d, stored, exc) from None
        return None
    if stored > current:
        raise _error(
            owner.actor_id,
            d,
            stored,
            "decode",
            f"it was stored by code that declares state_version={stored}, newer than this "
            f"code's {current}. Deploy that code (or a later one) to wake it.",
        )
    migrated = _migrate(owner.actor_id, d, stored, payload)
    try:
        owner.state = d.state_codec.decode_payload(migrated)
    except Exception as exc:
        raise _unfit(owner.actor_id, d, stored, exc) from None
    # The durable snapshot has the old shape, which nothing may decode now: should the
    # commit fail, the journal rolls back to "no snapshot" (and the wake fails).
    journal.restore(journal.seq, None)
    try:
        ticket = journal.checkpoint("migrate", args=encode([stored, current]))
    except EncodingError as exc:  # e.g. the migrated state is above max_state_size
        raise _error(owner.actor_id, d, stored, "commit", exc.message) from None
    log.info(
        "actor %s (%s): state migrated from version %d to %d",
        d.name,
        owner.actor_id,
        stored,
        current,
        extra=owner.log_fields,
    )
    return ticket


def _migrate(actor_id: str, d: ActorDefinition[Any], stored: int, payload: bytes) -> bytes:
    """Run the migrations from ``stored`` up; the encoding of the last one's result."""
    state = decode(payload)
    for version in range(stored, d.state_version):
        step = f"{version}->{version + 1}"
        fn = d.migrations[version]
        name = getattr(fn, "__name__", repr(fn))
        try:
            state = fn(state)
        except Exception as exc:
            log.error(
                "actor %s (%s): migration %s (%s) raised",
                d.name,
                actor_id,
                step,
                name,
                exc_info=exc,
                extra={"actor": d.name, "actor_id": actor_id},
            )
            raise _error(
                actor_id,
                d,
                stored,
                step,
                f"migration {step} (migrations[{version}], {name}) raised "
                f"{type(exc).__name__} (its traceback is in the server log). Fix it and retry.",
                logged=True,
            ) from exc
        if inspect.iscoroutine(state):
            state.close()
            raise _error(
                actor_id,
                d,
                stored,
                step,
                f"migration {step} ({name}) returned a coroutine; migrations are plain "
                "functions returning the next version's state.",
            )
        try:
            encoded = encode(state, f"the result of migration {step}")
        except EncodingError as exc:
            raise _error(actor_id, d, stored, step, f"{exc.message}.") from None
        if version + 1 < d.state_version:
            state = decode(encoded)  # the next step gets plain data, whatever this returned
    return encoded


def _unfit(
    actor_id: str, d: ActorDefinition[Any], stored: int, exc: Exception
) -> StateMigrationError:
    """The error for a state (as stored, or as migrated) that does not fit the type."""
    tp = d.state_codec.type
    type_name = getattr(tp, "__name__", repr(tp))
    detail = _describe(exc)
    if stored == d.state_version:
        what = (
            f"its stored state (version {stored}) does not fit {type_name}: {detail}. If "
            f"the state's shape changed, declare state_version={stored + 1} and "
            f"migrations={{{stored}: fn}}, fn turning the stored state (plain data) into "
            "the new shape (see docs/state-versions.md)."
        )
    else:
        what = (
            f"its state, migrated from version {stored} to {d.state_version}, does not "
            f"fit {type_name}: {detail}. Fix migrations[{d.state_version - 1}] to return "
            f"the version-{d.state_version} shape."
        )
    return _error(actor_id, d, stored, "decode", what)


def _describe(exc: Exception) -> str:
    """A validation error as text, without the values that failed (they are user data)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: its str() shows the input values
        text = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or 'state'}: {e.get('msg')}"
            for e in errors()
        )
    else:
        text = str(exc) or type(exc).__name__
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 3] + "..."


def _error(
    actor_id: str,
    d: ActorDefinition[Any],
    stored: int,
    step: str,
    what: str,
    logged: bool = False,
) -> StateMigrationError:
    versions = f"stored version {stored}" if stored else "stored version unknown"
    message = (
        f"actor {d.name!r} ({actor_id}) cannot wake ({versions}, state_version "
        f"{d.state_version}): {what} The stored state is untouched."
    )
    if not logged:
        log.error("%s", message, extra={"actor": d.name, "actor_id": actor_id})
    return StateMigrationError(
        message,
        metadata={
            "actor_id": actor_id,
            "stored_version": stored or None,
            "state_version": d.state_version,
            "step": step,
        },
    )
