"""Typed values over the network: argument type mismatches are a 400
``actor/validation_error`` naming the parameter, and dataclasses, msgspec Structs and
pydantic models round-trip as arguments, results, KV values, queue bodies and events
exactly as in-process (tests/features/test_typed_values.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pydantic
import pytest

from pyrivet import InvalidArgumentsError, Queue, Registry, actor
from pyrivet._protocol.messages import Encoding
from pyrivet.client import Client

from ._support import ENCODINGS, action_output, action_request, http_error, query_url
from .conftest import Served, Start


@dataclass
class Cell:
    row: int
    col: int


class Mark(msgspec.Struct):
    symbol: str


class Player(pydantic.BaseModel):
    name: str
    score: int = 0


board = actor("board", state={"plays": 0}, queues={"players": Queue(Player)})


@board.action
def play(c: Any, cell: Cell, mark: Mark, player: Player) -> Player:
    assert isinstance(cell, Cell) and isinstance(mark, Mark) and isinstance(player, Player)
    c.state["plays"] += 1
    c.broadcast("played", cell, mark, player)
    return Player(name=player.name, score=player.score + cell.row * 3 + cell.col)


@board.action
def plays(c: Any) -> int:
    return int(c.state["plays"])


@board.action
async def remember(c: Any, player: Player) -> Any:
    await c.kv.put("last", player)
    return await c.kv.get("last")


@board.action
def next_player(c: Any) -> Any:
    message = c.queue.try_next(["players"])
    return None if message is None else [type(message.body).__name__, message.body]


@pytest.fixture
async def served(start_server: Start) -> Served:
    return await start_server(Registry([board]))


@pytest.fixture(params=ENCODINGS)
async def client(served: Served, request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    async with Client(served.url, encoding=request.param) as c:
        yield c


async def post(served: Served, key: str, action: str, args: list[Any], encoding: Encoding) -> Any:
    body, headers = action_request(args, encoding)
    url = query_url("board", f"/action/{action}", key=key)
    response = await served.http.post(url, content=body, headers=headers)
    if response.status_code == 200:
        return 200, action_output(response.content, encoding)
    return response.status_code, http_error(
        response.content, response.headers["content-type"], encoding
    )


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_mismatched_argument_is_a_400_naming_the_parameter(
    served: Served, encoding: Encoding
) -> None:
    good = [{"row": 1, "col": 2}, {"symbol": "x"}, {"name": "ada"}]
    bad = [{"row": 1, "col": "2"}, {"symbol": "x"}, {"name": "ada"}]
    status, error = await post(served, "http", "play", bad, encoding)
    assert status == 400
    assert (error.group, error.code) == ("actor", "validation_error")
    assert "action 'play' of actor 'board': argument 1 (cell) must be Cell" in error.message
    assert error.metadata == {"parameter": "cell", "position": 0, "expected": "Cell"}
    status, error = await post(served, "http", "play", [*good[:2], {"score": 1}], encoding)
    assert (status, error.code, error.metadata["parameter"]) == (400, "validation_error", "player")
    # Nothing ran, and the server keeps serving.
    assert await post(served, "http", "plays", [], encoding) == (200, 0)
    assert await post(served, "http", "play", good, encoding) == (200, {"name": "ada", "score": 5})
    assert await post(served, "http", "plays", [], encoding) == (200, 1)


async def test_typed_values_round_trip_through_the_network_client(client: Client) -> None:
    handle = client.get_or_create("board", "client")
    player: Player = await handle.call(play, Cell(2, 1), Mark("o"), Player(name="bo", score=1))
    assert player == Player(name="bo", score=8)
    assert await handle.play({"row": 0, "col": 0}, {"symbol": "x"}, {"name": "cy"}) == {
        "name": "cy",
        "score": 0,
    }
    with pytest.raises(InvalidArgumentsError) as info:
        await handle.play(Cell(0, 0), {"symbol": 1}, Player(name="x"))
    assert info.value.code == "validation_error"
    assert info.value.metadata == {"parameter": "mark", "position": 1, "expected": "Mark"}
    assert await handle.remember(Player(name="kv")) == {"name": "kv", "score": 0}
    await handle.send("players", Player(name="queued", score=2))
    assert await handle.next_player() == ["Player", {"name": "queued", "score": 2}]
    seen: list[Any] = []
    async with handle.connect() as conn:
        conn.on("played", lambda *args: seen.append(list(args)))
        with pytest.raises(InvalidArgumentsError) as info:
            await conn.play([1, 1], {"symbol": "x"}, {"name": "ev"})
        assert info.value.metadata == {"parameter": "cell", "position": 0, "expected": "Cell"}
        # The same socket carries on.
        assert await conn.call(play, Cell(1, 1), Mark("x"), Player(name="ev")) == Player(
            name="ev", score=4
        )
    assert seen == [[{"row": 1, "col": 1}, {"symbol": "x"}, {"name": "ev", "score": 0}]]
