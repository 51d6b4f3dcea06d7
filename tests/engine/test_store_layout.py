"""`EngineStore`'s key layout, commit folding and options, without an engine."""

from __future__ import annotations

import pytest

from pyrivet import Registry, cli
from pyrivet.cli.envoy_command import engine_options_from_env
from pyrivet.engine import _store_layout as layout
from pyrivet.engine._store import EngineStore
from pyrivet.engine._store_plan import Plan
from pyrivet.engine.serve import serve_envoy
from pyrivet.errors import StorageError
from pyrivet.server import create_app
from pyrivet.storage import ActorRecord, AlarmRecord, CommitRecord, QueueMessageRecord


def test_values_tombstones_and_split_values_round_trip() -> None:
    assert layout.encode_value(b"\x02k", b"") == [(b"\x02k", b"\x01")]
    assert layout.decode_value(b"\x02k", b"\x01") == b""
    assert layout.encode_value(b"\x02k", None) == [(b"\x02k", layout.TOMBSTONE)]
    assert layout.decode_value(b"\x02k", layout.TOMBSTONE) is None
    big = bytes(300_000)
    entries = layout.encode_value(b"\x01s", big)
    header, parts = entries[0], entries[1:]
    assert layout.decode_value(*header) == (3, 300_000)
    assert [k for k, _ in parts] == layout.part_keys(b"\x01s", 3)
    assert b"".join(v for _, v in parts) == big
    assert all(len(v) <= layout.MAX_VALUE_BYTES for _, v in entries)
    with pytest.raises(StorageError, match="did not write"):
        layout.decode_value(b"\x02k", b"\x09junk")


def test_long_keys_are_refused_before_sending() -> None:
    layout.check_key(b"\x02" + b"x" * 2040)
    with pytest.raises(StorageError, match="too long for the Rivet Engine"):
        layout.check_key(b"\x02" + b"x" * 2046)
    # Zero bytes count twice in the engine's encoding.
    with pytest.raises(StorageError):
        layout.check_key(b"\x02" + b"\x00" * 1100)


def test_batches_stay_within_the_engines_put_limits() -> None:
    entries = [(layout.KV + i.to_bytes(4, "big"), b"v" * 10_000) for i in range(300)]
    groups = list(layout.batches(entries))
    assert [e for g in groups for e in g] == entries
    assert all(len(g) <= layout.MAX_ENTRIES_PER_PUT for g in groups)
    assert all(layout.put_size(g) <= layout.MAX_PUT_BYTES for g in groups)


def test_records_decode_or_fail_clearly() -> None:
    alarm = AlarmRecord("a", "x", 5, "once", "tick", b"\x90", 1)
    assert layout.decode_record(AlarmRecord, layout.encode_record(alarm)) == alarm
    with pytest.raises(StorageError, match="AlarmRecord does not decode"):
        layout.decode_record(AlarmRecord, b"\xc1")


def test_a_plan_folds_one_actors_records_in_order() -> None:
    created = ActorRecord("a", "box", ("k",), 1, None)
    plan = Plan("a", None)
    plan.add(CommitRecord("a", 1, create=created, state=b"s1", kv_puts=[(b"x", b"1")]))
    plan.add(
        CommitRecord(
            "a",
            2,
            initialized=True,
            state=b"s2",
            kv_delete_ranges=((b"x", b"y"),),
            kv_puts=[(b"x2", b"2")],
            kv_deletes=[b"gone"],
            queue_puts=(QueueMessageRecord(7, "q", b"", 1),),
            workflow_deletes=("w",),
            workflow_puts=(("w", b"w"),),
            prune_history_before=3,
        )
    )
    plan.finish()
    entries = dict(plan.entries)
    assert entries[layout.SEQ_KEY] == b"\x01" + layout.int8(2)
    assert entries[layout.STATE_KEY] == b"\x01s2"
    record = layout.decode_record(ActorRecord, entries[layout.ACTOR_KEY][1:])
    assert record.initialized and record.name == "box"
    assert layout.KV + b"x" not in entries, "the range delete removed the earlier put"
    assert entries[layout.KV + b"x2"] == b"\x012"
    assert entries[layout.KV + b"gone"] == layout.TOMBSTONE
    assert plan.tombstones == [layout.KV + b"gone"]
    assert entries[layout.WORKFLOW + b"w"] == b"\x01w"
    assert entries[layout.QUEUE_LAST_KEY] == b"\x01" + layout.int8(7)
    assert entries[layout.FLOOR_KEY] == b"\x01" + layout.int8(3)
    assert plan.needs_intent(), "a range delete cannot be one put"
    assert plan.intent().ranges == [(layout.KV + b"x", layout.KV + b"y")]


def test_a_plan_without_the_actors_record_refuses_the_initialized_flag() -> None:
    with pytest.raises(StorageError, match="not known to this envoy"):
        Plan("a", None).add(CommitRecord("a", 1, initialized=True))


async def test_the_store_answers_for_hosted_actors_only() -> None:
    store = EngineStore()
    with pytest.raises(StorageError, match="not open"):
        await store.list_actors()
    await store.open()
    assert await store.list_actors() == [] and await store.list_alarms() == []
    assert await store.find_actor("box", ("k",)) is None
    with pytest.raises(StorageError, match="no connection to the Rivet Engine"):
        await store.get_actor("a")
    with pytest.raises(StorageError, match="Rivet Engine creates actors"):
        await store.create_actor(ActorRecord("a", "box", ("k",), 1))
    with pytest.raises(StorageError, match="Rivet Engine creates actors"):
        await store.get_or_create_actor(ActorRecord("a", "box", ("k",), 1))
    store.adopt("a")
    await store.release("a")
    assert await store.count_actors() == {}
    await store.close()


def test_the_cli_flags_choose_where_envoy_mode_stores() -> None:
    args = cli._parser().parse_args(
        ["serve", "app:registry", "--engine", "http://e", "--local-storage", "--local-actor-db"]
    )
    options = engine_options_from_env(
        args.engine,
        None,
        None,
        None,
        None,
        local_storage=args.local_storage,
        local_actor_db=args.local_actor_db,
    )
    assert options is not None and options.local_storage and options.local_actor_db
    default = engine_options_from_env("http://e", None, None, None, None)
    assert default is not None and not default.local_storage and not default.local_actor_db


async def test_serve_envoy_refuses_an_unknown_storage() -> None:
    with pytest.raises(ValueError, match="'engine' or 'local'"):
        await serve_envoy(Registry([]), create_app, endpoint="http://e", storage="disk")
