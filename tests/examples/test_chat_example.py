"""examples/chat: the room actor (the React page runs in tests/browser)."""

from __future__ import annotations

from typing import Any

import pytest

from pyrivet import UserError
from pyrivet.testing import MockClock, run_actors

from .conftest import load_example

chat = load_example("chat/app.py")


async def test_messages_are_kept_and_typing_is_an_event_only(tmp_path: Any) -> None:
    clock = MockClock()
    async with run_actors(chat.registry, clock=clock, data_dir=tmp_path) as (_, client):
        room = client.get_or_create("chat", ["lobby"])
        heard: list[tuple[str, Any]] = []
        async with room.connect() as conn:
            conn.on("message", lambda m: heard.append(("message", m["text"])))
            conn.on("typing", lambda who, on: heard.append(("typing", (who, on))))
            await conn.typing("ada", True)
            sent = await conn.post("ada", "  hello  ")
            assert sent == {"id": 1, "author": "ada", "text": "hello", "at": clock.now()}
            await conn.typing("ada", False)
            with pytest.raises(UserError) as empty:
                await conn.post("ada", "   ")
            assert empty.value.code == "empty_message"
        assert heard == [
            ("typing", ("ada", True)),
            ("message", "hello"),
            ("typing", ("ada", False)),
        ]
    # A new runtime on the same data: the history is there, the typing is not.
    async with run_actors(chat.registry, clock=clock, data_dir=tmp_path) as (_, client):
        assert await client.get_or_create("chat", ["lobby"]).history() == [sent]


async def test_the_history_keeps_the_last_messages() -> None:
    async with run_actors(chat.registry, clock=MockClock()) as (_, client):
        room = client.get_or_create("chat", ["busy"])
        for n in range(chat.HISTORY + 5):
            await room.post("bob", f"message {n}")
        history = await room.history()
        assert len(history) == chat.HISTORY
        assert history[0]["text"] == "message 5"
        assert history[-1]["id"] == chat.HISTORY + 5
