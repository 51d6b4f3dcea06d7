"""`EventLog`: the per-actor sequence of events, and the recent ones kept for resumes.

Once a client that resumes has used an actor (``hibernation.baseline``), every event
the actor releases to its connections (a broadcast or a ``conn.send``) gets the next
number of the actor's event sequence when it is released, so numbers follow release
order. The log keeps the most recent events, bounded by
``ActorOptions.event_retention`` (count) and ``event_retention_age`` (seconds), so a
client that reconnects can ask for what it missed (`EventLog.since`).

A cursor is ``(epoch, seq)``: ``seq`` the last event the client saw, ``epoch`` the id
of the actor run that numbered it. A run is one stretch of the actor in memory; the log
is saved with the actor's data at sleep (`encode`) and the next run continues the
numbering with a new epoch. After a crash the numbers since the last sleep are lost
(and may be given again); the new run does not know the epoch of the lost one, so a
cursor from it is answered with a gap instead of events that would look like a
continuation. A gap is always reported, never skipped (`Gap`).

Runs on the event loop of the actor's runtime; no method awaits.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = ["EventLog", "Gap", "LoggedEvent"]

#: Epochs of earlier runs remembered (each with the last seq it numbered).
MAX_EPOCHS = 32


class LoggedEvent(msgspec.Struct, array_like=True, frozen=True):
    """One released event: its number, when (ms), whom (None: subscribers), what."""

    seq: int
    at_ms: int
    target: str | None
    name: str
    payload: bytes


class _Stored(msgspec.Struct, array_like=True):
    """What is saved at sleep (version 1)."""

    version: int
    next_seq: int
    #: (epoch, last seq numbered in it) of past runs, oldest first.
    epochs: list[tuple[str, int]]
    events: list[LoggedEvent]


@dataclass(frozen=True, slots=True)
class Gap:
    """Events a resuming client cannot get: ``after`` and ``until`` (inclusive) bound
    the missing numbers when known; ``reason`` says why, in words a user can act on."""

    code: str
    reason: str
    after: int
    until: int

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "reason": self.reason, "after": self.after, "until": self.until}


class EventLog:
    """The event sequence of one awake actor (see the module doc)."""

    __slots__ = (
        "dirty",
        "durable",
        "epoch",
        "epochs",
        "events",
        "max_age_ms",
        "max_count",
        "next_seq",
    )

    def __init__(self, max_count: int, max_age_s: float, stored: bytes | None = None) -> None:
        self.max_count = max_count
        self.max_age_ms = int(max_age_s * 1000)
        #: This run's id, sent with every sequenced event.
        self.epoch = os.urandom(6).hex()
        self.next_seq = 1
        self.epochs: list[tuple[str, int]] = []
        self.events: deque[LoggedEvent] = deque()
        #: Events were numbered since the log was loaded (it must be saved).
        self.dirty = False
        #: Saved at sleep: set once a client that resumes (a sequenced connection) used
        #: this actor, so actors whose clients never resume write nothing for it.
        self.durable = stored is not None
        if stored is not None:
            data = msgspec.msgpack.decode(stored, type=_Stored)
            self.next_seq = data.next_seq
            self.epochs = data.epochs[-MAX_EPOCHS:]
            self.events.extend(data.events)

    @property
    def last_seq(self) -> int:
        """The number of the latest event (0 before the first)."""
        return self.next_seq - 1

    def append(self, target: str | None, name: str, payload: bytes, now_ms: int) -> int:
        """Number an event being released, keep it, and return its number."""
        seq = self.next_seq
        self.next_seq = seq + 1
        self.dirty = True
        if self.max_count:
            events = self.events
            events.append(LoggedEvent(seq, now_ms, target, name, payload))
            # Checked here: most appends prune nothing, and a call per event costs more.
            if len(events) > self.max_count or events[0].at_ms < now_ms - self.max_age_ms:
                self._prune(now_ms)
        return seq

    def _prune(self, now_ms: int) -> None:
        events = self.events
        while len(events) > self.max_count:
            events.popleft()
        oldest = now_ms - self.max_age_ms
        while events and events[0].at_ms < oldest:
            events.popleft()

    def since(
        self, epoch: str, seq: int, conn_id: str | None, subscriptions: set[str], now_ms: int
    ) -> tuple[list[LoggedEvent], Gap | None]:
        """The kept events after cursor ``(epoch, seq)`` that a connection should get
        (broadcasts it subscribes to, events sent to ``conn_id``), and the gap before
        them, if any."""
        last = self.last_seq
        if epoch == self.epoch:
            if seq > last:
                return [], Gap(
                    "unknown_sequence",
                    f"the actor never sent event {seq} (its latest is {last}); the client's "
                    "cursor is reset to the latest",
                    last,
                    last,
                )
        else:
            known = dict(self.epochs)
            ended = known.get(epoch)
            if ended is None or seq > ended:
                return [], Gap(
                    "unknown_epoch",
                    "the actor does not know this cursor (it restarted without saving the "
                    "events numbered after its last sleep, or the cursor is from another "
                    "actor); events sent meanwhile may be missing",
                    0,
                    last,
                )
        self._prune(now_ms)
        first = self.events[0].seq if self.events else self.next_seq
        gap = None
        if first > seq + 1:
            gap = Gap(
                "retention",
                f"events {seq + 1} to {first - 1} are no longer kept (the actor keeps "
                f"{self.max_count} events for {self.max_age_ms / 1000:g} s; raise "
                "ActorOptions.event_retention / event_retention_age to keep more)",
                seq,
                first - 1,
            )
        missed = [
            e
            for e in self.events
            if e.seq > seq
            and (e.target == conn_id if e.target is not None else e.name in subscriptions)
        ]
        return missed, gap

    def encode(self, now_ms: int) -> bytes:
        """The log as saved at sleep (this run's epoch joins the known ones)."""
        self._prune(now_ms)
        epochs = [*self.epochs, (self.epoch, self.last_seq)][-MAX_EPOCHS:]
        data = _Stored(1, self.next_seq, epochs, list(self.events))
        return msgspec.msgpack.encode(data)
