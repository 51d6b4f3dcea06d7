"""The stored form of a workflow's history: explicit, versioned msgspec records.

A workflow's history is a flat key space the host stores as it is given (bytes values,
never pickled):

* ``"meta"`` -> `MetaRecord`: the workflow's state, its output or error.
* ``"e" + <location as JSON>`` -> `EntryRecord`: one entry (step, loop, sleep, queue
  wait, join, race, try block, rollback checkpoint, version check) at its *location*,
  the path of names from the workflow's top to the entry, with loop iterations as
  integers: ``("fetch",)``, ``("main", 3, "charge")``, ``("fan-out", "a", "load")``.

User values (step outputs, loop state, message bodies) inside a record are encoded by
`pyrivet._codec.values`. Each record carries a format version ``v``; a record written
by a newer pyrivet fails to load with a message saying so.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from ..errors import WorkflowError

__all__ = [
    "FORMAT_VERSION",
    "META_KEY",
    "EntryKind",
    "EntryRecord",
    "EntryStatus",
    "Location",
    "MetaRecord",
    "WorkflowState",
    "decode_entry",
    "decode_meta",
    "describe_location",
    "encode_record",
    "entry_key",
]

#: The format version this code writes and reads.
FORMAT_VERSION: Final = 1
#: The key of the workflow's `MetaRecord`.
META_KEY: Final = "meta"
_ENTRY_PREFIX: Final = "e"

Location = tuple[str | int, ...]
EntryKind = Literal[
    "step",
    "loop",
    "sleep",
    "message",
    "join",
    "race",
    "try",
    "rollback_checkpoint",
    "version_check",
]
EntryStatus = Literal["pending", "running", "completed", "failed", "exhausted"]
WorkflowState = Literal[
    "pending", "running", "sleeping", "failed", "completed", "cancelled", "rolling_back"
]


class EntryRecord(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One history entry.

    Not tracked by the garbage collector (``gc=False``): it holds scalars, bytes, a
    tuple and a dict of strings, so it can be part of no reference cycle. A workflow's
    entries live as long as its run (one per step); tracked, every collection of the
    generations they reached would walk them.

    Attributes:
        v: format version.
        kind: what the code ran here.
        location: where (see the module docstring).
        seq: creation order within the workflow; ``replay_from`` drops by it.
        status: ``completed`` once its result is final; ``failed`` after a failed
            attempt that will be retried, or for good when ``error_kind`` is set;
            ``exhausted`` after the last retry failed.
        attempts: step attempts that ran (failed ones, plus the successful one).
        last_attempt_at: epoch seconds when the last failed attempt ended; the next
            retry is due at ``last_attempt_at + backoff(attempts)``.
        output: the encoded result (step output, loop/join/try result, messages).
        error: the last error as text.
        error_kind: set when the entry failed for good: ``critical``, ``timeout``,
            ``exhausted``, ``rollback``, ``join``, ``race``.
        errors: per-branch errors of a failed join or race.
        deadline: epoch seconds: a sleep's wake time, a queue wait's timeout.
        iteration: a loop's current iteration (the one to run next).
        state: a loop's encoded state at the start of ``iteration``.
        winner: a race's winning branch; a try block's failed step.
        version: a version check's pinned version.
        rolled_back: a step whose rollback callback completed.
    """

    v: int = FORMAT_VERSION
    kind: EntryKind
    location: Location
    seq: int
    status: EntryStatus = "pending"
    attempts: int = 0
    last_attempt_at: float | None = None
    output: bytes | None = None
    error: str | None = None
    error_kind: str | None = None
    errors: dict[str, str] | None = None
    deadline: float | None = None
    iteration: int = 0
    state: bytes | None = None
    winner: str | None = None
    version: int | None = None
    rolled_back: bool = False

    @property
    def name(self) -> str:
        """The entry's own name: the last part of its location."""
        return str(self.location[-1])


class MetaRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The workflow as a whole: its state and, once it ended, its output or error."""

    v: int = FORMAT_VERSION
    state: WorkflowState = "pending"
    output: bytes | None = None
    error: str | None = None


_encoder = msgspec.msgpack.Encoder()
_json = msgspec.json.Encoder()
_entry_decoder = msgspec.msgpack.Decoder(EntryRecord)
_meta_decoder = msgspec.msgpack.Decoder(MetaRecord)


def entry_key(location: Location) -> str:
    """The storage key of the entry at ``location`` (readable: ``e["main",3,"charge"]``)."""
    return _ENTRY_PREFIX + _json.encode(location).decode()


def is_entry_key(key: str) -> bool:
    """Whether ``key`` names an entry (as opposed to the meta record)."""
    return key.startswith(_ENTRY_PREFIX + "[")


def encode_record(record: EntryRecord | MetaRecord) -> bytes:
    """The bytes the host stores for ``record``."""
    return _encoder.encode(record)


def _check_version(v: int, key: str) -> None:
    if v > FORMAT_VERSION:
        raise WorkflowError(
            f"workflow history record {key!r} has format version {v}, newer than this "
            f"pyrivet reads ({FORMAT_VERSION}); upgrade pyrivet to run this workflow"
        )


def decode_entry(key: str, data: bytes) -> EntryRecord:
    """Decode a stored entry; raises `WorkflowError` if it is malformed or too new."""
    try:
        record = _entry_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise WorkflowError(f"workflow history record {key!r} is malformed: {exc}") from None
    _check_version(record.v, key)
    # msgpack has no tuples: the location comes back as a list.
    record.location = tuple(record.location)
    return record


def decode_meta(data: bytes) -> MetaRecord:
    """Decode the stored meta record; raises `WorkflowError` if malformed or too new."""
    try:
        record = _meta_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise WorkflowError(f"workflow meta record is malformed: {exc}") from None
    _check_version(record.v, META_KEY)
    return record


def describe_location(location: Location) -> str:
    """A location for messages: ``main[3].charge``, or ``the workflow`` for the top."""
    if not location:
        return "the workflow"
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
