"""`NetworkOptions`: the keyword options of ``Client(url, ...)`` (see `HttpTransport`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal, TypedDict

from .._util.backoff import Backoff
from .._util.clock import Clock

__all__ = ["NetworkOptions"]


class NetworkOptions(TypedDict, total=False):
    """Options of the network client; every one has a default.

    Keys:
        encoding: wire encoding, ``"bare"`` (default, as the JavaScript client),
            ``"cbor"`` or ``"json"``.
        namespace: RivetKit namespace (``"default"``).
        token: access token (``Authorization: Bearer`` and gateway URLs).
        headers: extra headers on every HTTP request and WebSocket handshake.
        pool_name: runner pool name sent when creating actors (``"default"``).
        clock: time source for reconnect backoff and retry waits.
        backoff: reconnect backoff of connections (250 ms doubling to 30 s).
        max_input_size: largest CBOR input carried in a query URL (4 096 bytes).
        timeout: seconds an HTTP request may take (90).
        metadata_lookup: read ``GET /metadata`` before the first request (True).
        rng: random source for backoff jitter.
    """

    encoding: Literal["bare", "cbor", "json"]
    namespace: str | None
    token: str | None
    headers: Mapping[str, str] | None
    pool_name: str
    clock: Clock | None
    backoff: Backoff | None
    max_input_size: int
    timeout: float
    metadata_lookup: bool
    rng: Callable[[], float]
