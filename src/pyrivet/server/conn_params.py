"""Connection parameters as clients send them (protocol reference §5.2, §9.1).

HTTP requests carry ``x-rivet-conn-params: <JSON>``; WebSockets, which browsers cannot
give headers, carry the subprotocol ``rivet_conn_params.<encodeURIComponent(JSON)>``
(a header is accepted there too, for non-browser clients). RivetKit limits params to
4 KiB.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import unquote

import msgspec

from .errors import invalid_request

__all__ = ["MAX_PARAMS_SIZE", "PARAMS_HEADER", "PARAMS_SUBPROTOCOL", "parse_params"]

MAX_PARAMS_SIZE: Final = 4096
PARAMS_HEADER: Final = "x-rivet-conn-params"
PARAMS_SUBPROTOCOL: Final = "rivet_conn_params."


def parse_params(header: str | None, subprotocols: list[str] | None = None) -> Any:
    """The connection params of a request, or None if it sent none.

    Args:
        header: the ``x-rivet-conn-params`` value as ASGI gave it (latin-1 text).
        subprotocols: the offered WebSocket subprotocols (WebSocket requests only);
            a ``rivet_conn_params.`` one wins over the header.

    Raises:
        ActorError: ``actor/invalid_request`` when the params are larger than 4 KiB or
            not valid JSON.
    """
    text: str | None = None
    where = PARAMS_HEADER
    for protocol in subprotocols or ():
        if protocol.startswith(PARAMS_SUBPROTOCOL):
            text = unquote(protocol[len(PARAMS_SUBPROTOCOL) :])
            where = "the rivet_conn_params subprotocol"
            break
    else:
        if header is not None:
            # Header bytes reach us as latin-1; JSON.stringify output is UTF-8.
            text = header.encode("latin-1").decode("utf-8", "replace")
    if text is None:
        return None
    size = len(text.encode())
    if size > MAX_PARAMS_SIZE:
        raise invalid_request(
            f"connection params are {size} bytes, above the {MAX_PARAMS_SIZE}-byte limit"
        )
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise invalid_request(f"{where} is not valid JSON: {exc}") from None
