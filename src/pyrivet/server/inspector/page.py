"""The inspector page at ``/ui``: its files (package data in ``ui/``) and its actor list.

* ``GET /ui`` (and ``/ui/``): the page; ``GET /ui/app.js``, ``/ui/style.css``: its
  script and styles. They hold no secret and are served without a token (the page
  asks for one, or takes it from the URL's ``#token=`` fragment, which browsers never
  send to the server). Nothing is fetched from anywhere else.
* ``GET /ui/api/actors?q=``: the actor list (`listing.list_actors`), token required.

With the inspector off (no token) every ``/ui`` path answers 403 ``inspector/disabled``.
Runs in the request's task; the files are read once and kept.
"""

from __future__ import annotations

from importlib import resources
from typing import Final
from urllib.parse import parse_qs

import msgspec

from .._asgi import HttpReply, RequestInfo
from .._state import ServerState
from ..http_routes import method_not_allowed, not_found
from .auth import check_token
from .listing import list_actors

__all__ = ["ui_http"]

_FILES: Final = {
    "": ("index.html", "text/html; charset=utf-8"),
    "index.html": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "style.css": ("style.css", "text/css; charset=utf-8"),
}
_cache: dict[str, bytes] = {}


def _file(name: str) -> bytes:
    data = _cache.get(name)
    if data is None:
        data = _cache[name] = resources.files(__package__).joinpath("ui", name).read_bytes()
    return data


async def ui_http(state: ServerState, request: RequestInfo) -> HttpReply:
    """Serve ``/ui/...`` (see the module docstring).

    Raises:
        ActorError: ``inspector/disabled``, ``inspector/unauthorized`` (the actor list),
            ``actor/route_not_found`` (no such file), ``actor/method_not_allowed``.
    """
    if request.method not in ("GET", "HEAD"):
        raise method_not_allowed(request.method, "GET")
    token = state.options.inspector_token
    rest = "/".join(request.segments[1:])
    if rest == "api/actors":
        check_token(token, request.header("authorization"))
        query = (parse_qs(request.query_string).get("q") or [""])[0]
        body = msgspec.json.encode(await list_actors(state.runtime, query))
        return HttpReply.of(200, body, "application/json")
    check_token(token, f"Bearer {token}")  # only "is the inspector on?"
    entry = _FILES.get(rest)
    if entry is None:
        raise not_found(f"GET /ui/{rest}")
    reply = HttpReply.of(200, _file(entry[0]), entry[1])
    reply.headers.append(("cache-control", "no-cache"))
    return reply
