"""bench/canned_floor.py's canned replies are the frames `pyrivet serve` sends for the
same calls (byte for byte, in every encoding), and its middleware answers calls on a
real server while everything else still reaches pyrivet."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from pyrivet._protocol.messages import ActionRequest, Encoding, Init, encode_to_server
from pyrivet.server import create_app

from . import conftest
from ._support import ENCODINGS, query_url, recv_msg, subprotocols, subscribe
from .conftest import Start

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import canned_floor  # a script of bench/, not a package
from counter_app import registry as counter_registry


def _request(action_id: int, encoding: Encoding, n: int = 1) -> bytes | str:
    data = encode_to_server(ActionRequest(action_id, "increment", [n]), encoding)
    return data.decode() if encoding == "json" else data


async def _frames_of_calls(url: str, encoding: Encoding, calls: int) -> list[Any]:
    """Subscribe to ``newCount``, then ``increment(1)`` ``calls`` times, one after another:
    the raw frames received after `Init`."""
    path = query_url("counter", "/connect", key="k")
    frames = []
    async with connect(url + path, subprotocols=subprotocols(encoding)) as ws:
        assert isinstance(await recv_msg(ws, encoding), Init)
        await subscribe(ws, encoding, "newCount")
        for action_id in range(calls):
            await ws.send(_request(action_id, encoding))
            frames += [await ws.recv(), await ws.recv()]
        await ws.send(encode_to_server(ActionRequest(calls, "getCount", []), encoding))
        frames.append(await ws.recv())
    return frames


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_canned_frames_are_pyrivets(
    start_server: Start, monkeypatch: pytest.MonkeyPatch, encoding: Encoding
) -> None:
    served = await start_server(counter_registry)
    real = await _frames_of_calls(served.ws_url, encoding, 3)
    created = create_app
    monkeypatch.setattr(
        conftest, "create_app", lambda *a, **k: canned_floor.CannedReplies(created(*a, **k))
    )
    canned_served = await start_server(counter_registry)
    canned = await _frames_of_calls(canned_served.ws_url, encoding, 3)
    assert canned == real
    # the actor never saw the canned calls: its count is still 0
    response = await canned_served.http.post(
        query_url("counter", "/action/getCount", key="k"),
        content=b'{"args":[]}',
        headers={"x-rivet-encoding": "json", "content-type": "application/json"},
    )
    assert response.json() == {"output": 0}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_expected_request_is_answered_without_decoding(
    monkeypatch: pytest.MonkeyPatch, encoding: Encoding
) -> None:
    canned = canned_floor.CannedCounter(encoding)
    first = canned.answer(_request(0, encoding, 2))
    assert first is not None and len(first) == 2
    canned.prepare_next()

    def no_decode(*args: Any) -> None:
        raise AssertionError("decoded an expected request")

    monkeypatch.setattr(canned_floor, "decode_to_server", no_decode)
    frames = canned.answer(_request(1, encoding))
    monkeypatch.undo()
    assert frames == canned_floor.CannedCounter(encoding)._frames(1, 3)
    assert (canned.count, canned.last_id) == (3, 1)
    # an unexpected id is decoded and answered with that id
    again = canned.answer(_request(7, encoding))
    assert again == canned_floor.CannedCounter(encoding)._frames(7, 4)
    assert canned.last_id == 7


def test_other_frames_pass_through() -> None:
    canned = canned_floor.CannedCounter("bare")
    assert canned.answer(b"\xff\xff") is None
    other = encode_to_server(ActionRequest(0, "reset", []), "bare")
    assert canned.answer(other) is None
