"""CORS for browser clients, answered the way the Rivet engine answers them.

RivetKit's browser client sends ``credentials: "include"`` and custom headers
(``x-rivet-encoding``, ``x-rivet-conn-params``), so every response to an allowed
``Origin`` echoes that origin with ``access-control-allow-credentials: true`` (a ``*``
would be refused by the browser), and preflights echo the requested headers.

WebSockets are not subject to CORS; check ``Origin`` in ``on_before_connect`` if needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ._asgi import HttpReply, RequestInfo

__all__ = ["ALLOW_METHODS", "CorsPolicy"]

ALLOW_METHODS: Final = "GET, POST, PUT, DELETE, OPTIONS, PATCH"
_MAX_AGE: Final = "86400"


class CorsPolicy:
    """Which origins may call the server from a browser.

    Args:
        origins: ``"*"`` allows every origin (echoed back, as the engine does), or a
            list of exact origins such as ``["https://app.example.com"]``.
    """

    def __init__(self, origins: str | Sequence[str] = "*") -> None:
        self._any = origins == "*"
        self._origins = frozenset(() if isinstance(origins, str) else origins)

    def allows(self, origin: str) -> bool:
        return self._any or origin in self._origins

    def response_headers(self, request: RequestInfo) -> list[tuple[str, str]]:
        """Headers for an actual (non-preflight) response; none without an allowed Origin."""
        origin = request.header("origin")
        if origin is None or not self.allows(origin):
            return [("vary", "Origin")] if origin is not None else []
        return [
            ("access-control-allow-origin", origin),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "*"),
            ("vary", "Origin"),
        ]

    def preflight(self, request: RequestInfo) -> HttpReply:
        """The 204 answer to an ``OPTIONS`` request (headers only for allowed origins)."""
        reply = HttpReply(204)
        origin = request.header("origin")
        if origin is None or not self.allows(origin):
            return reply
        requested = request.header("access-control-request-headers")
        reply.headers.extend(
            [
                ("access-control-allow-origin", origin),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", ALLOW_METHODS),
                ("access-control-expose-headers", "*"),
                ("access-control-max-age", _MAX_AGE),
                ("vary", "Origin, Access-Control-Request-Headers"),
            ]
        )
        if requested:
            reply.headers.append(("access-control-allow-headers", requested))
        return reply
