"""Actor keys in the engine's string form (RivetKit's serialization)."""

from __future__ import annotations

import pytest

from pyrivet.engine._keys import parse_actor_key
from pyrivet.storage._base import serialize_key


@pytest.mark.parametrize(
    "key", [(), ("a",), ("a", "b"), ("",), ("x/y", "z\\w"), ("", "end"), ("tail\\",)]
)
def test_actor_keys_round_trip_rivetkit_serialization(key: tuple[str, ...]) -> None:
    assert parse_actor_key(serialize_key(key)) == key


def test_actor_key_strings() -> None:
    assert parse_actor_key(None) == ()
    assert parse_actor_key("trail\\") == ("trail\\",)
    assert parse_actor_key("a\\/b/\\0") == ("a/b", "")
