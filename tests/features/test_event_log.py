"""`EventLog.append` keeps the newest events within the count and the age retention."""

from __future__ import annotations

from pyrivet._runtime.event_log import EventLog


def kept(log: EventLog) -> list[int]:
    return [event.seq for event in log.events]


def test_append_drops_the_oldest_events_beyond_the_count() -> None:
    log = EventLog(max_count=3, max_age_s=60)
    seqs = [log.append(None, "e", b"", 1_000 + i) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert kept(log) == [3, 4, 5]
    assert log.last_seq == 5 and log.dirty


def test_append_drops_events_older_than_the_age() -> None:
    log = EventLog(max_count=100, max_age_s=1)
    log.append(None, "e", b"", 1_000)
    log.append("conn", "e", b"", 1_500)
    log.append(None, "e", b"", 2_000)  # the first is exactly 1 s old: kept
    assert kept(log) == [1, 2, 3]
    log.append(None, "e", b"", 2_501)  # the first two are older than 1 s now
    assert kept(log) == [3, 4]


def test_append_keeps_nothing_without_a_count() -> None:
    log = EventLog(max_count=0, max_age_s=60)
    assert [log.append(None, "e", b"", 1_000) for _ in range(3)] == [1, 2, 3]
    assert kept(log) == []
