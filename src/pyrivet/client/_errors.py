"""Errors the client raises on its own, without an actor having answered.

They are `ActorError`s, so ``except ActorError`` around a call catches every way it can
fail: what the actor or server answered, and what went wrong on the way there.

```
ActorError
├── ConnectionClosedError      connection/closed   the connection was closed (or disposed)
│   └── ConnectionLostError    connection/lost     the socket dropped while an action was in flight
├── NetworkError               client/network_error  the server could not be reached
└── HttpRequestError           client/http_error     a non-2xx answer that is not a RivetKit error
```
"""

from __future__ import annotations

from ..errors import ActorError

__all__ = ["ConnectionClosedError", "ConnectionLostError", "HttpRequestError", "NetworkError"]


class ConnectionClosedError(ActorError):
    """Raised by an action on a connection that is closed, or that was closed while
    the action waited to be sent."""

    default_group = "connection"
    default_code = "closed"


class ConnectionLostError(ConnectionClosedError):
    """Raised by an action that was sent on a connection whose socket then dropped.

    The actor may or may not have run it: actions are never re-sent automatically.
    The connection itself reconnects on its own.
    """

    default_code = "lost"


class NetworkError(ActorError):
    """Raised when the server cannot be reached (refused, DNS, TLS, timeout, reset).

    The original exception is chained as ``__cause__``.
    """

    default_group = "client"
    default_code = "network_error"


class HttpRequestError(ActorError):
    """Raised for a non-2xx HTTP answer whose body is not a RivetKit error.

    ``metadata`` holds ``{"status": int, "body": str}`` (the body cut to 1 000 chars).
    """

    default_group = "client"
    default_code = "http_error"
