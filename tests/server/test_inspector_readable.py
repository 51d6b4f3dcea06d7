"""`views.readable`: what the inspector shows for stored values (bytes as text or hex)."""

from __future__ import annotations

from pyrivet._codec.values import encode
from pyrivet.server.inspector.views import readable, readable_payload


class Text(str):
    pass


def test_scalars_come_back_as_they_are() -> None:
    for value in ("a", 1, 1.5, True, None, Text("sub")):
        assert readable(value) is value


def test_bytes_become_text_or_hex_at_any_depth() -> None:
    value = {
        "utf8": b"caf\xc3\xa9",
        "binary": bytearray(b"\xff\x00"),
        "view": memoryview(b"ok"),
        1: (1, [b"x", {"deep": b"\xfe"}]),
    }
    assert readable(value) == {
        "utf8": "café",
        "binary": "0xff00",
        "view": "ok",
        "1": [1, ["x", {"deep": "0xfe"}]],
    }


def test_payloads_decode_or_show_their_bytes() -> None:
    assert readable_payload(encode([2, {"k": b"\x01"}])) == [2, {"k": "\x01"}]
    assert readable_payload(b"\xc1") == "0xc1"  # not a value: the raw bytes
