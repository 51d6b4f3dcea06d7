"""The envoy protocol codec: round trips, bad input, and bytes equal to the engine's own.

The byte-exact test encodes one sample value per variant of every union (and every
variant of every nested union, with optionals both absent and present) with pyrivet and
with the engine's generated codec (npm ``@rivetkit/engine-envoy-protocol`` 2.3.19, run
once under node), and compares the bytes; then decodes the engine's bytes back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyrivet._codec.errors import InvalidMessageError
from pyrivet.engine import _schema as s
from pyrivet.engine._protocol import (
    ACTOR_COMMAND_KEY_DATA,
    PROTOCOL_VERSION,
    TO_ENVOY,
    TO_ENVOY_CONN,
    TO_GATEWAY,
    TO_OUTBOUND,
    TO_RIVET,
    decode_to_envoy,
    decode_to_rivet,
    encode_to_envoy,
    encode_to_rivet,
)
from pyrivet.errors import EncodingError

JS_MODULES = Path(__file__).resolve().parents[1] / "conformance" / "js" / "node_modules"
PACKAGE = JS_MODULES / "@rivetkit" / "engine-envoy-protocol"
SCRIPT = Path(__file__).with_name("encode_envoy.mjs")
TOP_LEVEL: dict[str, s.Union] = {
    "ToRivet": TO_RIVET,
    "ToEnvoy": TO_ENVOY,
    "ToEnvoyConn": TO_ENVOY_CONN,
    "ToGateway": TO_GATEWAY,
    "ToOutbound": TO_OUTBOUND,
    "ActorCommandKeyData": ACTOR_COMMAND_KEY_DATA,
}


def sample(kind: s.Type, k: int, depth: int = 0) -> Any:
    """A value of ``kind``; ``k`` picks union variants, enum members and shapes."""
    if isinstance(kind, s.Union):
        variant, inner = kind.variants[k % len(kind.variants)]
        return s.Tagged(variant, None if inner is None else sample(inner, k, depth + 1))
    if isinstance(kind, s.Struct):
        return {
            name: sample(field, k + i, depth + 1) for i, (name, field) in enumerate(kind.fields)
        }
    if isinstance(kind, s.Enum):
        return kind.members[k % len(kind.members)]
    if isinstance(kind, s.Optional):
        return None if k % 2 else sample(kind.inner, k, depth + 1)
    if isinstance(kind, s.ListOf):
        return [sample(kind.inner, k + i, depth + 1) for i in range(k % 3)]
    if isinstance(kind, s.MapOf):
        return {f"key-{i}": sample(kind.value, k + i, depth + 1) for i in range(k % 3)}
    if isinstance(kind, s.FixedData):
        return bytes((k + i) % 256 for i in range(kind.length))
    if kind is s.U32_ARRAY:
        return [k, 2**32 - 1][: k % 3]
    return {
        "bool": k % 2 == 0,
        "str": f"é-{k}" * (k % 3),
        "data": bytes(range(k % 5)),
        "u16": 65535 - k,
        "u32": 2**32 - 1 - k,
        "u64": 2**64 - 1 - k,
        "i64": -(2**63) + k if k % 2 else 2**62 + k,
    }[kind.name]


def to_js(kind: s.Type, value: Any) -> Any:
    """The JSON form encode_envoy.mjs revives into the generated codec's values."""
    if isinstance(kind, s.Union):
        inner = kind.variants[[v for v, _ in kind.variants].index(value.tag)][1]
        return {"tag": value.tag, "val": None if inner is None else to_js(inner, value.val)}
    if isinstance(kind, s.Struct):
        return {camel(name): to_js(field, value[name]) for name, field in kind.fields}
    if isinstance(kind, s.Optional):
        return None if value is None else to_js(kind.inner, value)
    if isinstance(kind, s.ListOf):
        return [to_js(kind.inner, item) for item in value]
    if isinstance(kind, s.MapOf):
        return {"$map": [[key, to_js(kind.value, item)] for key, item in value.items()]}
    if kind is s.U32_ARRAY:
        return {"$u32": value}
    if isinstance(kind, s.FixedData) or kind is s.DATA:
        return {"$bytes": bytes(value).hex()}
    if kind.name in ("u64", "i64"):
        return {"$big": str(value)}
    return value


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def all_samples() -> list[tuple[str, s.Union, Any]]:
    out = []
    for name, union in TOP_LEVEL.items():
        for k in range(max(16, 2 * len(union.variants))):
            out.append((name, union, sample(union, k)))
    return out


def test_version_is_the_engines() -> None:
    assert PROTOCOL_VERSION == 8


@pytest.mark.parametrize("name", list(TOP_LEVEL))
def test_round_trip_of_every_variant(name: str) -> None:
    union = TOP_LEVEL[name]
    seen = set()
    for k in range(max(16, 2 * len(union.variants))):
        value = sample(union, k)
        seen.add(value.tag)
        assert union.decode(union.encode(value)) == value
    assert seen == {variant for variant, _ in union.variants}


def test_helpers_encode_and_decode_frames() -> None:
    ping = s.Tagged("ToEnvoyPing", {"ts": 1_700_000_000_000})
    assert decode_to_envoy(encode_to_envoy(ping)) == ping
    pong = s.Tagged("ToRivetPong", {"ts": -1})
    assert encode_to_rivet(pong) == bytes([4]) + (2**64 - 1).to_bytes(8, "little")
    assert decode_to_rivet(encode_to_rivet(pong)) == pong


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "ToEnvoy"),
        (bytes([99]), "unknown ToEnvoy tag 99"),
        (bytes([5, 1, 2]), "ToEnvoy"),  # a Ping cut short
        (encode_to_envoy(s.Tagged("ToEnvoyPing", {"ts": 1})) + b"\x00", "ToEnvoy"),
    ],
)
def test_bad_frames_raise_invalid_message(data: bytes, problem: str) -> None:
    with pytest.raises(InvalidMessageError, match=problem):
        decode_to_envoy(data)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (s.Tagged("Nope", None), "no variant 'Nope'"),
        ({"ts": 1}, "Tagged value"),
        (s.Tagged("ToRivetPong", {}), r"ToRivetPong\.ts is missing"),
        (s.Tagged("ToRivetPong", {"ts": "1"}), "i64 expected"),
        (s.Tagged("ToRivetPong", {"ts": True}), "i64 expected"),
        (s.Tagged("ToRivetStopping", 1), "void expected"),
        (s.Tagged("ToRivetEvents", "x"), "expected a list"),
        (s.Tagged("ToRivetMetadata", {"prepopulate_actor_names": [], "metadata": None}), "dict"),
        (s.Tagged("ToRivetKvRequest", 3), "expected a dict"),
        (
            s.Tagged(
                "ToRivetTunnelMessage",
                {
                    "message_id": {"gateway_id": b"123", "request_id": b"1234", "message_index": 0},
                    "message_kind": s.Tagged("ToRivetRequestBodyCancel"),
                },
            ),
            r"data<4> got 3 bytes",
        ),
        (
            s.Tagged(
                "ToRivetTunnelMessage",
                {
                    "message_id": {"gateway_id": "1234", "request_id": b"1234", "message_index": 0},
                    "message_kind": s.Tagged("ToRivetRequestBodyCancel"),
                },
            ),
            r"data<4> expected bytes",
        ),
    ],
)
def test_bad_values_raise_encoding_error(value: Any, problem: str) -> None:
    with pytest.raises(EncodingError, match=problem):
        encode_to_rivet(value)


def test_bad_enum_values() -> None:
    event = s.Tagged(
        "ToRivetEvents",
        [
            {
                "checkpoint": {"actor_id": "a", "generation": 1, "index": 0},
                "inner": s.Tagged(
                    "EventActorStateUpdate",
                    {"state": s.Tagged("ActorStateStopped", {"code": "Bad", "message": None})},
                ),
            }
        ],
    )
    with pytest.raises(EncodingError, match="StopCode has no member 'Bad'"):
        encode_to_rivet(event)
    frame = bytearray(
        encode_to_rivet(s.Tagged("ToRivetAckCommands", {"last_command_checkpoints": []}))
    )
    stop = encode_to_envoy(
        s.Tagged(
            "ToEnvoyCommands",
            [
                {
                    "checkpoint": {"actor_id": "", "generation": 0, "index": 0},
                    "inner": s.Tagged("CommandStopActor", {"reason": "Lost"}),
                }
            ],
        )
    )
    assert frame == bytes([2, 0])
    with pytest.raises(InvalidMessageError, match="unknown StopActorReason value 9"):
        decode_to_envoy(stop[:-1] + bytes([9]))


def test_u32_array_longer_than_the_frame_is_rejected() -> None:
    kind = s.U32_ARRAY
    with pytest.raises(InvalidMessageError, match="longer than the message"):
        kind.decode(bytes([3, 0, 0, 0, 0]))
    assert kind.decode(kind.encode([1, 2])) == [1, 2]


@pytest.fixture(scope="module")
def node() -> str:
    executable = shutil.which("node")
    if executable is None or not (PACKAGE / "dist" / "index.js").is_file():
        reason = (
            "byte-exact envoy protocol tests need `node` and "
            "tests/conformance/js/node_modules (run `npm install` there)"
        )
        if os.environ.get("PYRIVET_REQUIRE_NODE") == "1":
            pytest.fail(f"{reason}; PYRIVET_REQUIRE_NODE=1 forbids skipping")
        pytest.skip(reason)
    return executable


def test_bytes_equal_the_engines_generated_codec(node: str) -> None:
    samples = all_samples()
    payload = json.dumps([{"type": name, "value": to_js(u, v)} for name, u, v in samples])
    done = subprocess.run(
        [node, str(SCRIPT), str(PACKAGE)],
        input=payload,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    theirs = [bytes.fromhex(item) for item in json.loads(done.stdout)]
    assert len(theirs) == len(samples) > 100
    for (name, union, value), expected in zip(samples, theirs, strict=True):
        assert union.encode(value) == expected, (name, value)
        assert union.decode(expected) == value
