"""pyrivet's resume extension of the ``connect`` WebSocket (negotiated, never imposed).

A client that wants numbered events and resumable connections offers the subprotocol
``pyrivet_resume.<encodeURIComponent(JSON)>`` next to ``rivet``; the JSON is

    {"v": 1, "conn": id|null, "token": str|null, "epoch": str|null, "seq": int|null,
     "events": [names it listens to]}

(all keys optional but ``v``). The official client never offers it, so what it sees
on the wire does not change. On a connection that offered it, the server:

* sends, right after ``Init``, the event ``_pyrivet.hello`` with one argument
  ``{conn, token, epoch, seq, resumed, gap?}``: the connection (``resumed`` true when
  ``conn``/``token`` named a connection still known to the actor, whose state and
  subscriptions it keeps, and no ``on_connect`` ran), the token to resume it later,
  the end of the actor's event sequence when it opened, and the events the client
  cannot get back (``gap``: ``{code, reason, after, until}``);
* then the events after the client's ``(epoch, seq)`` cursor that it missed;
* sends every event as ``_pyrivet.event`` with arguments ``[seq, epoch, name, args]``.

A malformed offer fails the connection with ``connection/invalid_resume``.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote

import msgspec

from .._runtime.hibernation import Resume
from ..errors import ActorError

__all__ = [
    "EVENT_FRAME",
    "HELLO_EVENT",
    "RESUME_SUBPROTOCOL",
    "ResumeOffer",
    "parse_resume",
]

RESUME_SUBPROTOCOL: Final = "pyrivet_resume."
HELLO_EVENT: Final = "_pyrivet.hello"
EVENT_FRAME: Final = "_pyrivet.event"
_MAX_SIZE: Final = 16 * 1024


class ResumeOffer(msgspec.Struct, frozen=True):
    """The JSON of the subprotocol."""

    v: int
    conn: str | None = None
    token: str | None = None
    epoch: str | None = None
    seq: int | None = None
    events: list[str] = msgspec.field(default_factory=list)


def parse_resume(protocols: list[str]) -> tuple[Resume, set[str]] | None:
    """The resume request and subscriptions offered, or None if the client did not
    offer the extension.

    Raises:
        ActorError: ``connection/invalid_resume`` for an offer that does not parse.
    """
    for protocol in protocols:
        if protocol.startswith(RESUME_SUBPROTOCOL):
            text = unquote(protocol[len(RESUME_SUBPROTOCOL) :])
            break
    else:
        return None
    if len(text) > _MAX_SIZE:
        raise _invalid(f"it is {len(text)} bytes, above {_MAX_SIZE}")
    try:
        offer = msgspec.json.decode(text, type=ResumeOffer)
    except msgspec.DecodeError as exc:
        raise _invalid(str(exc)) from None
    if offer.v != 1:
        raise _invalid(f"version {offer.v} is not supported (this server speaks 1)")
    if offer.seq is not None and offer.seq < 0:
        raise _invalid("seq must not be negative")
    resume = Resume(offer.conn, offer.token, offer.epoch, offer.seq)
    return resume, set(offer.events)


def _invalid(why: str) -> ActorError:
    return ActorError(
        f"the {RESUME_SUBPROTOCOL}… subprotocol is invalid: {why}; send "
        '{"v": 1, "conn", "token", "epoch", "seq", "events"} as URI-encoded JSON',
        group="connection",
        code="invalid_resume",
    )
