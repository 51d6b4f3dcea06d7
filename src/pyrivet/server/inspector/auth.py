"""The inspector's bearer token: where it comes from and how a request is checked.

The server's token comes from ``create_app(..., inspector_token=)`` /
``serve(..., inspector_token=)``, else the ``PYRIVET_INSPECTOR_TOKEN`` environment
variable; ``pyrivet serve`` generates one when neither is set (``--no-inspector``
turns the inspector off). Pure functions; the comparison takes constant time.
"""

from __future__ import annotations

import hmac
from typing import Final

from ...errors import ActorError

__all__ = ["TOKEN_ENV", "check_token", "token_matches"]

#: The environment variable ``pyrivet serve`` and `create_app` read the token from.
TOKEN_ENV: Final = "PYRIVET_INSPECTOR_TOKEN"


def token_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def check_token(expected: str | None, authorization: str | None) -> None:
    """Accept ``Authorization: Bearer <expected>``.

    Raises:
        ActorError: ``inspector/disabled`` (the server has no token) or
            ``inspector/unauthorized`` (missing or wrong token).
    """
    if not expected:
        raise ActorError(
            "the inspector is off on this server: start it with an inspector token "
            f"(pyrivet serve --inspector-token, serve(..., inspector_token=...) or the "
            f"{TOKEN_ENV} environment variable) and send it as `Authorization: Bearer <token>`",
            group="inspector",
            code="disabled",
        )
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token_matches(expected, token):
        raise ActorError(
            "missing or wrong inspector token; send `Authorization: Bearer <token>`",
            group="inspector",
            code="unauthorized",
        )
