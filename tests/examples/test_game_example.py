"""examples/game: the ``run`` loop ticks on the runtime's clock (a mock one here)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyrivet import UserError
from pyrivet.testing import MockClock, run_actors

from .conftest import load_example

game = load_example("game/app.py")


async def test_a_player_steers_to_the_coin_scores_and_the_idle_match_sleeps(
    tmp_path: Any,
) -> None:
    clock = MockClock()
    async with run_actors(game.registry, clock=clock, data_dir=tmp_path) as (runtime, client):
        match = client.get_or_create("game", ["m1"])
        async with (
            match.connect(params={"name": "ada"}) as ada,
            match.connect() as watcher,
            watcher.events("snapshot") as snapshots,
        ):
            # Bad input is refused and changes nothing.
            with pytest.raises(UserError) as bad:
                await ada.steer(1, 1)
            assert bad.value.code == "bad_move"
            with pytest.raises(UserError) as spectator:
                await watcher.steer(1, 0)
            assert spectator.value.code == "not_playing"
            with pytest.raises(UserError) as nameless:
                async with match.connect(params={"name": ""}) as bad_conn:
                    await bad_conn.scores()
            assert nameless.value.code == "bad_name"

            # Ticks happen only when the clock moves; each brings one snapshot.
            ticks = 0
            while ticks < 4 * game.SIZE:
                await clock.advance(game.TICK)
                ticks += 1
                _, (snapshot,) = await asyncio.wait_for(anext(snapshots), 10)
                assert set(snapshot["players"]) == {"ada"}  # the watcher is not a player
                if snapshot["scores"].get("ada"):
                    break
                await ada.steer(*game.chase(snapshot, "ada"))
            assert snapshot["scores"] == {"ada": 1}
            assert ticks <= 2 * game.SIZE  # she walked there, one cell per tick

        # Nobody left: after IDLE_TICKS the match sleeps, and the score was kept.
        actor_id = await match.resolve()
        await clock.advance(game.TICK * (game.IDLE_TICKS + 1))
        assert not runtime.is_awake(actor_id)
        assert await match.scores() == {"ada": 1}
