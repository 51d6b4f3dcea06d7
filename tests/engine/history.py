"""The history checker of the multi-node test: no actor on two envoys at once, no
acknowledged write lost.

Inputs, all stamped with the machine-wide monotonic clock (``time.monotonic_ns``,
comparable across processes):

* `Ack`: one acknowledged ``bump`` of a ledger actor, as its client saw it: the count
  the actor returned, the envoy that ran it, when the call was sent and answered.
* `Ownership`: one stretch of an actor on one envoy, from its ``wake`` to its ``sleep``
  line in that envoy's log, or to the envoy's death (kill -9 writes no ``sleep``), or
  open if the envoy still runs.
* the final count read from each actor after the load.

`check_history` returns what is wrong, as sentences (empty: the history is sound);
`lost_acks` counts the acknowledged writes whose effect did not last (for an envoy
that persists state after acknowledging it, such as RivetKit's).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Ack", "Ownership", "check_history", "lost_acks", "read_ownership"]


@dataclass(frozen=True)
class Ack:
    """An acknowledged write: ``count`` returned by ``actor`` running on ``envoy``."""

    key: str
    actor: str
    count: int
    envoy: str
    sent: int
    at: int


@dataclass(frozen=True)
class Ownership:
    """``actor`` ran on ``envoy`` from ``start`` to ``end`` (None: still running)."""

    actor: str
    envoy: str
    start: int
    end: int | None

    def overlaps(self, start: int, end: int) -> bool:
        return self.start <= end and (self.end is None or start <= self.end)


def read_ownership(path: Path, envoy: str, died_at: int | None) -> list[Ownership]:
    """The stretches in one envoy's log (``wake|sleep ACTOR ENVOY NS`` lines).

    A ``wake`` without a ``sleep`` ends at ``died_at`` (the envoy was killed) or stays
    open. A malformed line (a kill -9 in mid-write) is ignored.
    """
    open_since: dict[str, int] = {}
    stretches: list[Ownership] = []
    text = path.read_text() if path.exists() else ""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[2] != envoy or not parts[3].isdigit():
            continue
        kind, actor, at = parts[0], parts[1], int(parts[3])
        if kind == "wake":
            open_since[actor] = at
        elif kind == "sleep" and actor in open_since:
            stretches.append(Ownership(actor, envoy, open_since.pop(actor), at))
    stretches.extend(Ownership(actor, envoy, at, died_at) for actor, at in open_since.items())
    return stretches


def check_history(
    acks: Mapping[str, Sequence[Ack]],
    final: Mapping[str, int],
    ownership: Iterable[Ownership],
) -> list[str]:
    """Everything wrong with one run; ``acks`` per key in the order they were answered.

    * a key's acknowledged counts must strictly increase (each caller waits for its
      answer before the next call, so a repeat or a step back is forked or lost state);
    * the final count must be at least the last acknowledged one (nothing lost);
    * two stretches of one actor must not overlap (never on two envoys at once);
    * every ack must come from an envoy whose stretch covers the call.
    """
    problems: list[str] = []
    by_actor: dict[str, list[Ownership]] = defaultdict(list)
    for stretch in ownership:
        by_actor[stretch.actor].append(stretch)
    for actor, stretches in by_actor.items():
        stretches.sort(key=lambda s: s.start)
        for before, after in itertools.pairwise(stretches):
            if before.end is None or before.end > after.start:
                problems.append(
                    f"actor {actor} ran on {before.envoy} and {after.envoy} at once "
                    f"({before.envoy} from {before.start} to {before.end}, "
                    f"{after.envoy} from {after.start})"
                )
    for key, answered in acks.items():
        for previous, ack in itertools.pairwise(answered):
            if ack.count <= previous.count:
                problems.append(
                    f"{key}: acknowledged {ack.count} on {ack.envoy} after "
                    f"{previous.count} on {previous.envoy} (forked or lost state)"
                )
        if answered and final.get(key, 0) < answered[-1].count:
            problems.append(
                f"{key}: final count {final.get(key)} is below the last acknowledged "
                f"{answered[-1].count} (a lost write)"
            )
        for ack in answered:
            owners = by_actor.get(ack.actor, [])
            if not any(s.envoy == ack.envoy and s.overlaps(ack.sent, ack.at) for s in owners):
                problems.append(
                    f"{key}: {ack.count} acknowledged by {ack.envoy}, which did not run "
                    f"actor {ack.actor} then"
                )
    return problems


def lost_acks(acks: Mapping[str, Sequence[Ack]], final: Mapping[str, int]) -> int:
    """How many acknowledged writes did not last, over all keys.

    An ack (count ``n``) is lost when a later ack of its key returned ``n`` or less
    (the actor went on from older state) or the key's final count is below ``n``.
    ``acks`` per key in the order they were answered; a key missing from ``final``
    is judged by its later acks only.
    """
    lost = 0
    for key, answered in acks.items():
        last = final.get(key)
        later: int | None = None  # the lowest count acknowledged after the ack looked at
        for ack in reversed(answered):
            if (later is not None and later <= ack.count) or (
                last is not None and last < ack.count
            ):
                lost += 1
            later = ack.count if later is None else min(later, ack.count)
    return lost
