"""Addresses on a RivetKit endpoint, as the official JavaScript client 2.3.19 builds them.

Pure functions, no I/O (see the protocol reference, §4 and §9):

* management API: ``GET|PUT|POST /actors?namespace=…`` with the ``/``-escaped key;
* direct gateway: ``/gateway/{actorId}[@{token}]{path}`` for handles bound to an id;
* query gateway: ``/gateway/{name}{path}?…rvt-namespace=…&rvt-method=get|getOrCreate…``
  for handles made by key (the server resolves, and creates, on every request);
* connection params: ``x-rivet-conn-params`` header (HTTP) or the
  ``rivet_conn_params.<urlencoded JSON>`` subprotocol (WebSocket).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import SplitResult, quote, unquote, urlencode, urlsplit, urlunsplit

from .._codec import cbor
from .._protocol.query import ActorQuery
from ..errors import EncodingError

__all__ = [
    "CONN_PARAMS_HEADER",
    "DEFAULT_MAX_INPUT_SIZE",
    "ENCODING_HEADER",
    "Endpoint",
    "conn_params_header",
    "conn_params_subprotocol",
    "connect_subprotocols",
    "direct_path",
    "encode_uri_component",
    "management_input",
    "parse_close_reason",
    "parse_endpoint",
    "query_path",
    "query_path_supported",
    "serialize_key",
    "split_user_path",
]

ENCODING_HEADER: Final = "x-rivet-encoding"
CONN_PARAMS_HEADER: Final = "x-rivet-conn-params"
#: Largest CBOR-encoded input carried in a query URL (``maxInputSize`` of the JS client).
DEFAULT_MAX_INPUT_SIZE: Final = 4096

#: What ``encodeURIComponent`` leaves unescaped, minus ``(`` and ``)``: those are not
#: HTTP token characters, so they would make a subprotocol invalid. Decoding is the same.
_URI_COMPONENT_SAFE: Final = "-_.!~*'"


def encode_uri_component(text: str) -> str:
    """Percent-encode ``text`` as JavaScript's ``encodeURIComponent`` does (UTF-8)."""
    return quote(text, safe=_URI_COMPONENT_SAFE)


def serialize_key(key: Sequence[str]) -> str:
    """The management-API form of a key: ``/``-joined, ``\\`` and ``/`` escaped.

    ``()`` is ``"/"``; an empty part is ``\\0``.
    """
    if not key:
        return "/"
    parts = []
    for part in key:
        if part == "":
            parts.append("\\0")
        else:
            parts.append(part.replace("\\", "\\\\").replace("/", "\\/"))
    return "/".join(parts)


def management_input(value: Any) -> str:
    """An actor input as the management API carries it: std base64 of compat CBOR.

    Raises:
        EncodingError: the value cannot be encoded.
    """
    return base64.b64encode(cbor.encode(value)).decode("ascii")


def _json_params(params: Any) -> str:
    try:
        # ensure_ascii: header values must be ASCII; the escapes decode to the same JSON.
        return json.dumps(params, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EncodingError(
            f"connection params must be JSON-serializable: {exc}", code="invalid_params"
        ) from None


def conn_params_header(params: Any) -> str:
    """The ``x-rivet-conn-params`` header value: ``JSON.stringify(params)``.

    Raises:
        EncodingError: the params are not JSON-serializable.
    """
    return _json_params(params)


def conn_params_subprotocol(params: Any) -> str:
    """The ``rivet_conn_params.<encodeURIComponent(JSON)>`` subprotocol.

    Raises:
        EncodingError: the params are not JSON-serializable.
    """
    return "rivet_conn_params." + encode_uri_component(_json_params(params))


def connect_subprotocols(encoding: str, params: Any, extra: Sequence[str] = ()) -> list[str]:
    """Subprotocols for a gateway WebSocket: ``rivet`` (the server must select it),
    the encoding, the params if any, then ``extra``."""
    protocols = ["rivet", f"rivet_encoding.{encoding}"]
    if params is not None:
        protocols.append(conn_params_subprotocol(params))
    protocols.extend(extra)
    return protocols


class Endpoint:
    """A parsed endpoint URL: base URL (path kept), namespace and token.

    ``https://namespace:token@host/base`` sets the namespace and token, as in the
    JavaScript client; explicit arguments win over the URL's.
    """

    def __init__(self, base: str, namespace: str, token: str | None) -> None:
        self.base = base.rstrip("/")
        self.namespace = namespace
        self.token = token

    def http_url(self, path: str) -> str:
        """``path`` (starting with ``/``) under the endpoint."""
        return self.base + path

    def ws_url(self, path: str) -> str:
        """``path`` under the endpoint with ``http`` replaced by ``ws``."""
        url = self.http_url(path)
        if url.startswith("https://"):
            return "wss://" + url[len("https://") :]
        if url.startswith("http://"):
            return "ws://" + url[len("http://") :]
        return url


def parse_endpoint(url: str, namespace: str | None, token: str | None) -> Endpoint:
    """Parse ``url``; ``namespace``/``token`` override credentials in the URL.

    Raises:
        ValueError: not an ``http(s)://`` (or ``ws(s)://``) URL.
    """
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// endpoint URL, got {url!r}")
    url_namespace = unquote(parts.username) if parts.username else None
    url_token = unquote(parts.password) if parts.password else None
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    base = urlunsplit(SplitResult(scheme, netloc, parts.path.rstrip("/"), "", ""))
    return Endpoint(base, namespace or url_namespace or "default", token or url_token)


def split_user_path(path: str) -> tuple[str, str]:
    """Split a raw path into (path without leading ``/``, ``?query`` or ``""``)."""
    path_part, mark, query = path.partition("?")
    return path_part.lstrip("/"), (mark + query)


def direct_path(actor_id: str, path: str, token: str | None) -> str:
    """``/gateway/{id}[@{token}]{path}`` for an actor id."""
    token_part = f"@{encode_uri_component(token)}" if token is not None else ""
    return f"/gateway/{encode_uri_component(actor_id)}{token_part}{path}"


def _query_input(query: ActorQuery) -> str | None:
    if query.input is None:
        return None
    return base64.urlsafe_b64encode(cbor.encode(query.input)).decode("ascii").rstrip("=")


def query_path_supported(query: ActorQuery, max_input_size: int) -> bool:
    """Whether ``query`` can travel in a query-gateway URL.

    Not when a key part contains ``,`` or is empty (``rvt-key`` is comma-joined and
    unescaped, so such keys are ambiguous there) or when the input is larger than
    ``max_input_size``; the caller then resolves through the management API.

    Raises:
        EncodingError: the input cannot be encoded.
    """
    if query.mode not in ("get", "get_or_create"):
        return False
    if any(part == "" or "," in part for part in query.key):
        return False
    return query.input is None or len(cbor.encode(query.input)) <= max_input_size


def query_path(
    query: ActorQuery,
    path: str,
    *,
    namespace: str,
    token: str | None,
    pool_name: str,
) -> str:
    """``/gateway/{name}{path}?…&rvt-…`` for a ``get`` / ``get_or_create`` query.

    ``path`` may carry its own ``?query``; the ``rvt-*`` parameters follow it, in the
    order the JavaScript client writes them.

    Raises:
        ValueError: ``query`` is not a get / get_or_create query.
        EncodingError: the input cannot be encoded.
    """
    params: list[tuple[str, str]] = [("rvt-namespace", namespace)]
    if query.mode == "get":
        params.append(("rvt-method", "get"))
        if query.key:
            params.append(("rvt-key", ",".join(query.key)))
    elif query.mode == "get_or_create":
        params += [("rvt-method", "getOrCreate"), ("rvt-runner", pool_name)]
        if query.key:
            params.append(("rvt-key", ",".join(query.key)))
        encoded_input = _query_input(query)
        if encoded_input is not None:
            params.append(("rvt-input", encoded_input))
        params.append(("rvt-crash-policy", "sleep"))
    else:
        raise ValueError(f"query-gateway URLs support get and get_or_create, not {query.mode}")
    if token is not None:
        params.append(("rvt-token", token))
    # URLSearchParams encoding, as the JavaScript client uses.
    query_string = urlencode(params, safe="*")
    if path.endswith(("?", "&")):
        separator = ""
    elif "?" in path:
        separator = "&"
    else:
        separator = "?"
    return f"/gateway/{encode_uri_component(query.name)}{path}{separator}{query_string}"


def parse_close_reason(reason: str) -> tuple[str, str] | None:
    """``(group, code)`` from a close reason ``group.code[#rayId]``, else None."""
    head = reason.partition("#")[0].strip()
    group, dot, code = head.partition(".")
    if not dot or not group or not code or " " in head:
        return None
    return group, code
