"""The received-event path of the network client, without a server.

`ResumeState.unwrap` (the numbered event's bookkeeping) and `ActorConnection`'s
listeners, which are kept as tuples replaced on every change so that dispatching an
event iterates them without a copy.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from pyrivet.client import ActorConnection
from pyrivet.client._resume import ResumeState


def test_unwrap_advances_the_cursor_and_hands_over_the_frames_list() -> None:
    state = ResumeState()
    inner = [42]
    assert state.unwrap([7, "e1", "newCount", inner]) == ("newCount", inner)
    assert state.unwrap([7, "e1", "newCount", [1]]) is not None
    assert state.cursor == ("e1", 7)
    name, args = cast(tuple[str, list[Any]], state.unwrap([9, "e1", "other", 5]))
    assert (name, args) == ("other", [5])  # a lone value becomes a one-item list
    assert state.cursor == ("e1", 9)
    assert state.unwrap([8, "e1", "late", []]) == ("late", [])
    assert state.cursor == ("e1", 9)  # never moves back


def test_unwrap_keeps_the_cursor_epoch_as_text() -> None:
    state = ResumeState()
    state.unwrap([3, 1234, "tick", []])
    assert state.cursor == ("1234", 3)


@pytest.mark.parametrize(
    "args",
    [
        [],
        [1, "e", "n"],
        [1, "e", "n", [], 0],
        ["1", "e", "n", []],
        [1, "e", 5, []],
        [1.0, "e", "n", []],
    ],
)
def test_unwrap_ignores_malformed_numbered_events(
    args: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    state = ResumeState()
    with caplog.at_level(logging.WARNING, logger="pyrivet.client"):
        assert state.unwrap(args) is None
    assert "malformed numbered event" in caplog.text
    assert state.cursor is None


def _conn() -> ActorConnection:
    return ActorConnection(cast(Any, None), cast(Any, None), None)  # never opened


def test_listeners_added_or_removed_during_an_event_take_effect_on_the_next() -> None:
    conn = _conn()
    heard: list[tuple[str, int]] = []
    unsubscribers: list[Any] = []

    def first(n: int) -> None:
        heard.append(("first", n))
        if n == 1:
            conn.on("count", lambda m: heard.append(("late", m)))
            unsubscribers[1]()  # `second` still hears this event

    unsubscribers.append(conn.on("count", first))
    unsubscribers.append(conn.on("count", lambda n: heard.append(("second", n))))
    conn.on_event("count", [1])
    conn.on_event("count", [2])
    assert heard == [("first", 1), ("second", 1), ("first", 2), ("late", 2)]


def test_unsubscribe_removes_one_registration_once() -> None:
    conn = _conn()
    heard: list[int] = []
    off_a = conn.on("count", heard.append)
    off_b = conn.on("count", heard.append)  # the same callback twice: heard twice
    conn.on_event("count", [1])
    off_a()
    off_a()  # a second call does nothing, even though the callback is still there
    conn.on_event("count", [2])
    off_b()
    conn.on_event("count", [3])
    assert heard == [1, 1, 2]
    assert "count" not in conn._listeners


def test_unsubscribing_an_old_registration_leaves_a_new_one() -> None:
    conn = _conn()
    heard: list[int] = []
    off = conn.on("count", heard.append)
    off()
    conn.on("count", heard.append)
    off()  # already done: must not drop the new registration
    conn.on_event("count", [1])
    assert heard == [1]


def test_once_hears_one_event() -> None:
    conn = _conn()
    heard: list[int] = []
    conn.once("count", heard.append)
    conn.on_event("count", [1])
    conn.on_event("count", [2])
    assert heard == [1]
