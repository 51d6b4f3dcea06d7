"""The client half of pyrivet's resume extension (``pyrivet.server.resume`` is the server's).

`ResumeState` belongs to one reconnecting connection (`ActorSocket`). It offers the
``pyrivet_resume.`` subprotocol on every attempt, with the connection to resume (id and
token, from the server's last ``_pyrivet.hello``), the event cursor (epoch and number
of the last event received) and the events listened to. It reads the hello, unwraps
numbered events (``_pyrivet.event`` → name and arguments, advancing the cursor) and
reports gaps: events the server could not send back. A gap is never skipped silently:
it goes to the connection's ``on_gap`` callbacks, or is logged as a warning when there
are none.

Servers that do not know the extension (RivetKit's) ignore the subprotocol; events
then arrive unnumbered and are delivered as they are. Runs on the connection's loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

__all__ = ["EVENT_FRAME", "HELLO_EVENT", "EventGap", "ResumeState"]

log = logging.getLogger("pyrivet.client")

HELLO_EVENT: Final = "_pyrivet.hello"
EVENT_FRAME: Final = "_pyrivet.event"
_SUBPROTOCOL: Final = "pyrivet_resume."


@dataclass(frozen=True, slots=True)
class EventGap:
    """Events a reconnected connection missed and cannot get back.

    ``code``: ``retention`` (older than the actor keeps; ``after`` < missing ≤
    ``until``), ``unknown_epoch`` (the actor restarted without the events numbered
    since its last save) or ``unknown_sequence`` (the cursor was ahead of the actor).
    ``reason`` says it in words.
    """

    code: str
    reason: str
    after: int
    until: int


class ResumeState:
    """What one connection remembers across reconnects (see the module doc)."""

    __slots__ = ("conn_id", "cursor", "resumed", "token")

    def __init__(self) -> None:
        self.conn_id: str | None = None
        self.token: str | None = None
        #: (epoch, seq) of the last event received; None before the first hello.
        self.cursor: tuple[str, int] | None = None
        #: Whether the last open resumed the previous connection (state kept).
        self.resumed = False

    def subprotocol(self, events: Iterable[str]) -> str:
        """The ``pyrivet_resume.`` subprotocol for the next attempt."""
        epoch, seq = self.cursor if self.cursor is not None else (None, None)
        offer = {
            "v": 1,
            "conn": self.conn_id,
            "token": self.token,
            "epoch": epoch,
            "seq": seq,
            "events": sorted(events),
        }
        return _SUBPROTOCOL + quote(json.dumps(offer, separators=(",", ":")), safe="")

    def hello(self, info: Any) -> EventGap | None:
        """Read the server's hello; return the gap it reports, if any."""
        if not isinstance(info, dict):
            return None
        self.conn_id = info.get("conn")
        self.token = info.get("token")
        self.resumed = bool(info.get("resumed"))
        gap = info.get("gap")
        epoch, seq = info.get("epoch"), info.get("seq")
        if (gap is not None or self.cursor is None) and isinstance(epoch, str):
            self.cursor = (epoch, int(seq or 0))
        if isinstance(gap, dict):
            return EventGap(
                str(gap.get("code")),
                str(gap.get("reason")),
                int(gap.get("after") or 0),
                int(gap.get("until") or 0),
            )
        return None

    def unwrap(self, args: list[Any]) -> tuple[str, list[Any]] | None:
        """The event inside a numbered-event frame (cursor advanced); None if malformed."""
        # Runs for every event: exact type tests first, isinstance only for the rest.
        if len(args) != 4:
            log.warning("ignoring a malformed numbered event from the server")
            return None
        seq, epoch, name, inner = args
        if (type(seq) is not int or type(name) is not str) and (
            not isinstance(name, str) or not isinstance(seq, int)
        ):
            log.warning("ignoring a malformed numbered event from the server")
            return None
        cursor = self.cursor
        if cursor is None or seq > cursor[1]:
            self.cursor = (epoch if type(epoch) is str else str(epoch), seq)
        # ``inner`` is the frame's own fresh list (nothing else holds it): not copied.
        return name, inner if type(inner) is list else [inner]
