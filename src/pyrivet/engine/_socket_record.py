"""`SocketRecord`: a tunnelled WebSocket as stored with its connection's record.

The tunnel (`_tunnel.AsgiTunnel`) gives each WebSocket's ``connect`` handler a
`handoff.SocketIdentity` whose record is this struct, msgpack-encoded; the runtime
saves it with the connection when the actor sleeps (``_runtime/hibernation.py``). When
the engine starts the actor on a process that does not hold the socket (the envoy
restarted, or the actor moved), the host (`_host.EnvoyHost`) reads the actor's stored
connections, and the tunnel serves each socket the gateway still holds again from its
record (`AsgiTunnel.revive`), as RivetKit's envoy does with its persisted
hibernatable connections (gateway id, request id, message indexes, path, headers).

Decoding a record that is not one raises `msgspec.DecodeError` / `ValidationError`
(the caller logs it and leaves that socket to be closed).
"""

from __future__ import annotations

import msgspec

__all__ = ["SocketRecord", "decode_socket", "encode_socket"]


class SocketRecord(msgspec.Struct, array_like=True, frozen=True):
    """One hibernatable tunnelled WebSocket (version 1)."""

    version: int
    #: The gateway's ids of the socket (``StartActor.hibernatingRequests`` lists them).
    gateway_id: bytes
    request_id: bytes
    #: The gateway's index of the last client message the app read: a resent message
    #: at or below it is a duplicate, one past the next is a gap.
    read_index: int
    #: The index of the next message this side sends on the socket.
    next_index: int
    #: The actor's path, and of the headers the gateway opened the socket with only
    #: its subprotocols without any ``rivet_token.`` (the ``connect`` handler reads
    #: the encoding from them again; nothing secret of the request is stored).
    path: str
    headers: dict[str, str]


def encode_socket(record: SocketRecord) -> bytes:
    return msgspec.msgpack.encode(record)


def decode_socket(data: bytes) -> SocketRecord:
    return msgspec.msgpack.decode(data, type=SocketRecord)
