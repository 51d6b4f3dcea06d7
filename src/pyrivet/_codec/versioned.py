"""The version envelope of a stored state, and `VersionedCodec`, which writes it.

An actor type declares the version of its state's shape (``state_version=``, 1 unless
declared). A snapshot of version 1 is the state's encoding alone, as every snapshot
was before versions existed; a snapshot of version 2 or more is wrapped in an
envelope that carries the version:

    MessagePack ext, type code `ENVELOPE_CODE`, whose data is
    the version (unsigned 32-bit, big-endian) followed by the state's encoding.

Why the version lives in the snapshot and not in a column of the actor's row: the
snapshot travels everywhere state goes (the ``actor_state`` row, every history entry,
the SQLite commit log, any driver's KV), so each copy says which shape it has; a woken
actor learns its version from the bytes it loads, in the read it already makes; a
history entry written before a migration still says it holds the old shape; and no
driver, schema or storage contract changes. Actor types that never declare a version
store exactly the bytes they stored before.

The envelope is valid MessagePack, so generic tools still read it (as an ext value).
A version-1 snapshot is never mistaken for an envelope: pyrivet's encoder writes no
ext value at the top of a state except a datetime (ext type -1); only a state that is
itself a ``msgspec.msgpack.Ext`` of type `ENVELOPE_CODE` would be.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from .values import ValueCodec, decode

__all__ = ["ENVELOPE_CODE", "VersionedCodec", "decode_stored", "unwrap", "wrap"]

#: The MessagePack ext type code of the envelope (application codes are 0 to 127).
ENVELOPE_CODE: Final = 82

_EXT8, _EXT16, _EXT32 = 0xC7, 0xC8, 0xC9
_VERSION = struct.Struct(">I")
#: Header layouts after the first byte: (length field, then the type code).
_HEADERS: Final = {
    _EXT8: struct.Struct(">Bb"),
    _EXT16: struct.Struct(">Hb"),
    _EXT32: struct.Struct(">Ib"),
}
_VERSION_MAX: Final = 2**32 - 1


def wrap(version: int, payload: bytes) -> bytes:
    """The snapshot of ``payload`` (a state's encoding) at ``version`` (2 or more)."""
    size = _VERSION.size + len(payload)
    if size <= 0xFF:
        first = _EXT8
    elif size <= 0xFFFF:
        first = _EXT16
    else:
        first = _EXT32
    header = bytes((first,)) + _HEADERS[first].pack(size, ENVELOPE_CODE)
    return b"".join((header, _VERSION.pack(version), payload))


def unwrap(snapshot: bytes) -> tuple[int, bytes]:
    """(version, the state's encoding) of a stored snapshot; (1, ``snapshot``) when it
    has no envelope.

    Raises:
        ValueError: the envelope's length does not match the snapshot (a damaged one).
    """
    layout = _HEADERS.get(snapshot[0]) if snapshot else None
    if layout is None:
        return 1, snapshot
    start = 1 + layout.size
    size, code = layout.unpack_from(snapshot, 1)
    if code != ENVELOPE_CODE:
        return 1, snapshot
    if size != len(snapshot) - start or size <= _VERSION.size:
        raise ValueError(
            f"the stored state has a damaged version envelope ({size} bytes declared, "
            f"{len(snapshot) - start} present)"
        )
    (version,) = _VERSION.unpack_from(snapshot, start)
    return version, snapshot[start + _VERSION.size :]


def decode_stored(codec: ValueCodec, snapshot: bytes) -> tuple[int, Any]:
    """(version, state) of a snapshot of any version, for reading history.

    The state is decoded into ``codec``'s type when it has the codec's version and fits
    it; otherwise (an entry written before a migration, or before the type changed) it
    is the plain data that was stored.
    """
    version, payload = unwrap(snapshot)
    if version == codec.version:
        try:
            return version, codec.decode_payload(payload)
        except Exception:
            pass  # an old shape under the same version: show it as stored
    return version, decode(payload)


class VersionedCodec(ValueCodec):
    """A `ValueCodec` for a state of version 2 or more: it writes and reads the envelope.

    `decode` accepts only snapshots of its own version (the runtime migrates older ones
    before anything decodes them, see ``pyrivet._runtime.migrate``).
    """

    __slots__ = ()

    def __init__(self, tp: Any, version: int) -> None:
        super().__init__(tp)
        if not 2 <= version <= _VERSION_MAX:
            raise ValueError(f"a versioned state has a version from 2 to {_VERSION_MAX}")
        self.version = version

    def encode(self, value: Any, what: str = "state") -> bytes:
        return wrap(self.version, super().encode(value, what))

    def decode(self, data: bytes) -> Any:
        """Decode a snapshot of this codec's version.

        Raises:
            ValueError: the snapshot has another version.
        """
        version, payload = unwrap(data)
        if version != self.version:
            raise ValueError(f"the snapshot is of state version {version}, not {self.version}")
        return self.decode_payload(payload)
