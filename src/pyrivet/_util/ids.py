"""Opaque identifiers: actor ids, connection ids, schedule ids."""

from __future__ import annotations

import os

__all__ = ["new_id"]


def new_id() -> str:
    """A random 128-bit identifier as 32 lowercase hex characters."""
    return os.urandom(16).hex()
