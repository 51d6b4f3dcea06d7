"""Actor keys on the wire, and the actor object of the management API.

Two forms exist (protocol reference §4):

* the management API's serialized key: parts joined by ``/``; inside a part ``\\`` is
  ``\\\\`` and ``/`` is ``\\/``; an empty part is ``\\0``; the empty key is ``/``
  (`serialize_key` / `deserialize_key`);
* the query gateway's ``rvt-key``: parts joined by ``,`` with no escaping, so a part
  cannot contain a comma there (`split_gateway_key`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .._protocol.query import deserialize_key
from ..storage._base import ActorRecord, serialize_key

__all__ = ["actor_object", "deserialize_key", "header_safe", "serialize_key", "split_gateway_key"]


def split_gateway_key(value: str | None) -> tuple[str, ...]:
    """The key of an ``rvt-key`` value (already URL-decoded); absent means ``()``."""
    if value is None:
        return ()
    return tuple(value.split(","))


def header_safe(text: str) -> str:
    """``text`` percent-encoded where it is not printable ASCII (for response headers)."""
    if text.isascii() and text.isprintable():
        return text
    return quote(text, safe="/\\ !#$&'()*+,:;=?@[]^_`{|}~-.")


def actor_object(record: ActorRecord) -> dict[str, Any]:
    """The actor as the management API reports it (the fields RivetKit's client reads).

    pyrivet wakes actors on demand, so every live actor is connectable: its start and
    connectable times are its creation time and it never reports a sleep time.
    """
    created = record.created_at_ms
    return {
        "actor_id": record.actor_id,
        "name": record.name,
        "key": serialize_key(record.key),
        "namespace_id": "default",
        "datacenter": "local",
        "runner_name_selector": "default",
        "crash_policy": "sleep",
        "create_ts": created,
        "start_ts": created,
        "connectable_ts": created,
        "pending_allocation_ts": None,
        "sleep_ts": None,
        "reschedule_ts": None,
        "destroy_ts": record.destroyed_at_ms,
        "error": None,
    }
