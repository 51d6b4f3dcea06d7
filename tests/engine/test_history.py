"""The multi-node history checker finds what it is there to find (no engine needed)."""

from __future__ import annotations

from pathlib import Path

from .history import Ack, Ownership, check_history, lost_acks, read_ownership


def ack(count: int, envoy: str, at: int, key: str = "k", actor: str = "x") -> Ack:
    return Ack(key, actor, count, envoy, at - 1, at)


def test_a_clean_move_from_one_envoy_to_another_is_sound() -> None:
    owners = [Ownership("x", "a", 0, 100), Ownership("x", "b", 150, None)]
    acks = {"k": [ack(1, "a", 10), ack(2, "a", 20), ack(3, "b", 160)]}
    assert check_history(acks, {"k": 4}, owners) == []


def test_overlapping_ownership_is_reported() -> None:
    owners = [Ownership("x", "a", 0, 200), Ownership("x", "b", 150, None)]
    problems = check_history({"k": [ack(1, "a", 10)]}, {"k": 1}, owners)
    assert problems == ["actor x ran on a and b at once (a from 0 to 200, b from 150)"]


def test_an_open_stretch_followed_by_another_is_an_overlap() -> None:
    owners = [Ownership("x", "a", 0, None), Ownership("x", "b", 150, None)]
    assert len(check_history({}, {}, owners)) == 1


def test_state_that_went_back_or_forked_is_reported() -> None:
    owners = [Ownership("x", "a", 0, 100), Ownership("x", "b", 150, None)]
    restarted = {"k": [ack(1, "a", 10), ack(2, "a", 20), ack(1, "b", 160)]}
    assert check_history(restarted, {"k": 2}, owners) == [
        "k: acknowledged 1 on b after 2 on a (forked or lost state)"
    ]
    repeated = {"k": [ack(1, "a", 10), ack(1, "b", 160)]}
    assert "forked" in check_history(repeated, {"k": 1}, owners)[0]


def test_a_final_count_below_the_last_ack_is_a_lost_write() -> None:
    owners = [Ownership("x", "a", 0, None)]
    assert check_history({"k": [ack(5, "a", 10)]}, {"k": 4}, owners) == [
        "k: final count 4 is below the last acknowledged 5 (a lost write)"
    ]


def test_an_ack_from_an_envoy_that_did_not_run_the_actor_is_reported() -> None:
    owners = [Ownership("x", "a", 0, 100)]
    problems = check_history({"k": [ack(1, "b", 50)]}, {"k": 1}, owners)
    assert problems == ["k: 1 acknowledged by b, which did not run actor x then"]


def test_read_ownership_pairs_wake_and_sleep_and_ends_at_death(tmp_path: Path) -> None:
    log = tmp_path / "a.ownership"
    log.write_text(
        "wake x a 10\nsleep x a 20\nwake x a 30\nwake y a 40\n"
        "wake z b 5\ngarbage\nsleep y a"  # another envoy's line; malformed lines
    )
    assert read_ownership(log, "a", died_at=99) == [
        Ownership("x", "a", 10, 20),
        Ownership("x", "a", 30, 99),
        Ownership("y", "a", 40, 99),
    ]
    assert read_ownership(tmp_path / "missing", "a", None) == []


def test_lost_acks_counts_writes_a_later_ack_or_the_final_count_went_back_on() -> None:
    # RivetKit-like: "a" acked 1..4, saved only up to 2; "b" went on from 2.
    moved = [ack(1, "a", 10), ack(2, "a", 20), ack(3, "a", 30), ack(4, "a", 40)]
    moved += [ack(3, "b", 160), ack(4, "b", 170), ack(5, "b", 180)]
    assert lost_acks({"k": moved}, {"k": 5}) == 2
    # The final count below the last acks loses them too; a sound history loses none.
    assert lost_acks({"k": [ack(1, "a", 10), ack(2, "a", 20), ack(3, "a", 30)]}, {"k": 1}) == 2
    sound = {"k": [ack(1, "a", 10), ack(2, "b", 160)], "j": [ack(7, "a", 5, key="j")]}
    assert lost_acks(sound, {"k": 2}) == 0
