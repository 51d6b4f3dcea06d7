"""The inspector: an HTTP API, a live WebSocket and a web page over the actors a server
hosts (docs/inspector.md).

* ``routes.py``: ``/gateway/{actor}/inspector/...`` (JSON);
* ``live.py``: ``/gateway/{actor}/inspector/live`` (a WebSocket of JSON frames pushed
  as the actor commits);
* ``page.py``: the page at ``/ui`` and its files (``ui/``, package data);
* ``views.py``, ``diff.py``: what they read, as plain data; ``auth.py``: the token.
"""

from .auth import TOKEN_ENV

__all__ = ["TOKEN_ENV"]
