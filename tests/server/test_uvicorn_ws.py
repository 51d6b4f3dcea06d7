"""`BatchingWebSocketProtocol` frames data itself: the bytes must be websockets' own."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from pyrivet.server._uvicorn_ws import frame_head


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_frames_are_what_websockets_serializes(opcode: Opcode, length: int) -> None:
    data = bytes(range(256)) * (length // 256) + bytes(length % 256)
    assert frame_head(opcode, length) + data == Frame(opcode, data).serialize(mask=False)
