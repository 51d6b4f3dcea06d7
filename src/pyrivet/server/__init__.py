"""The HTTP/WebSocket server: RivetKit's client protocol over a pyrivet runtime.

```python
from pyrivet.server import create_app
app = create_app(registry)            # any ASGI server: uvicorn app:app
```

or ``pyrivet serve app:registry`` (uvicorn, ``pip install pyrivet[server]``). The
unmodified RivetKit JavaScript client and ``@rivetkit/react`` talk to it.

Layout (one job per module):

| module          | job                                                          |
|-----------------|--------------------------------------------------------------|
| ``app``         | the ASGI callable, runtime ownership, top-level dispatch     |
| ``routing``     | path -> route                                                |
| ``gateway``     | ``/gateway/{target}``: direct id or ``rvt-*`` query, resolution |
| ``http_routes`` | metadata, health, actions, queue over HTTP                   |
| ``management``  | ``/actors`` management API                                   |
| ``ws_connect``  | the WebSocket ``connect`` protocol                           |
| ``raw_routes``  | ``request/`` and ``websocket/`` through actor hooks          |
| ``raw``         | `Request`, `Response`, `WebSocket` given to those hooks      |
| ``errors``      | errors -> HTTP statuses, bodies, frames, close reasons       |
| ``cors``        | CORS preflights and headers                                  |
| ``keys``        | key serializations and the management actor object           |
| ``serve``       | uvicorn runner with graceful SIGTERM handling                |
"""

from .app import PyrivetApp, create_app
from .raw import Headers, Request, Response, WebSocket, WebSocketClosed

__all__ = [
    "Headers",
    "PyrivetApp",
    "Request",
    "Response",
    "WebSocket",
    "WebSocketClosed",
    "create_app",
]
