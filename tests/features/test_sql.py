"""``c.db``: each actor's own SQL database, durable with its state (docs/sql.md)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pyrivet import ActorOptions, DatabaseError, Registry, UserError, actor
from pyrivet._runtime.actor_db import split_statements
from pyrivet._runtime.actor_dbs import MAX_UNSYNCED_BATCHES
from pyrivet._runtime.committer import Committer
from pyrivet.actor import ActorDefinition
from pyrivet.errors import DefinitionError
from pyrivet.storage import ActorStore, CommitRecord, MemoryDriver, SQLiteDriver
from pyrivet.testing import MockClock, run_actors

DriverFactory = Callable[[], ActorStore]

#: Hook calls, in order, of the `notes_def` actors (reset by each test that reads it).
CALLS: list[str] = []


def notes_def(**options: Any) -> ActorDefinition[Any]:
    notes = actor(
        "notes",
        state={"count": 0},
        create_vars=lambda c: CALLS.append("create_vars"),
        options=ActorOptions(**options),
    )

    @notes.on_migrate
    async def migrate(c: Any, db: Any) -> None:
        CALLS.append("on_migrate")
        await db.execute(
            "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE)"
        )

    @notes.on_create
    def on_create(c: Any, input: Any) -> None:
        CALLS.append("on_create")

    @notes.on_wake
    def on_wake(c: Any) -> None:
        CALLS.append("on_wake")

    @notes.action
    async def add(c: Any, body: str) -> int:
        rows = await c.db.execute("INSERT INTO notes (body) VALUES (?) RETURNING id", body)
        c.state["count"] += 1
        return int(rows[0]["id"])

    @notes.action
    async def add_named(c: Any, body: str) -> None:
        await c.db.execute("INSERT INTO notes (body) VALUES (:body)", body=body)
        c.state["count"] += 1

    @notes.action
    async def add_mapping(c: Any, body: str) -> None:
        await c.db.execute("INSERT INTO notes (body) VALUES (:body)", {"body": body})
        c.state["count"] += 1

    @notes.action
    async def run(c: Any, sql: str, *args: Any) -> Any:
        return await c.db.execute(sql, *args)

    @notes.action
    async def bodies(c: Any) -> list[str]:
        return [row["body"] for row in await c.db.execute("SELECT body FROM notes ORDER BY id")]

    @notes.action
    def count(c: Any) -> int:
        return int(c.state["count"])

    @notes.action
    async def add_in_tx(c: Any, items: list[str], fail: bool) -> None:
        async with c.db.transaction():
            for body in items:
                await c.db.execute("INSERT INTO notes (body) VALUES (?)", body)
                c.state["count"] += 1
                await asyncio.sleep(0)
            if fail:
                raise UserError("changed my mind", code="abort")

    @notes.action
    async def state_then_bad_sql(c: Any) -> None:
        await c.db.execute("INSERT INTO notes (body) VALUES ('half')")
        await c.db.execute("INSERT INTO nowhere VALUES (1)")

    return notes


async def test_rows_parameters_and_scripts(driver_factory: DriverFactory) -> None:
    notes = notes_def()
    async with run_actors(Registry([notes]), storage=driver_factory()) as (_, client):
        room = client.get_or_create("notes", ["a"])
        assert await room.add("first") == 1
        await room.add_named("second")
        await room.add_mapping("third")
        assert await room.bodies() == ["first", "second", "third"]
        rows = await room.run("SELECT id, body, length(body) AS n FROM notes WHERE id = ?", 2)
        assert rows == [{"id": 2, "body": "second", "n": 6}]
        # A script: statements split where SQLite says, `;` inside strings kept.
        await room.run("CREATE TABLE kv (k TEXT, v BLOB); INSERT INTO kv VALUES ('a;b', x'00ff');")
        await room.run("INSERT INTO kv VALUES (?, NULL)", "nul\x00inside")
        rows = await room.run("SELECT k, v FROM kv ORDER BY k")
        assert rows == [{"k": "a;b", "v": b"\x00\xff"}, {"k": "nul\x00inside", "v": None}]
        assert await room.count() == 3


async def test_sleep_restart_isolation_and_destroy(
    driver_factory: DriverFactory, tmp_path: Path
) -> None:
    notes = notes_def()
    registry = Registry([notes])
    async with run_actors(registry, storage=driver_factory()) as (runtime, client):
        a = client.get_or_create("notes", ["a"])
        b = client.get_or_create("notes", ["b"])
        await a.add("only in a")
        await b.add("only in b")
        await runtime.sleep(await a.resolve())
        assert await a.bodies() == ["only in a"]
        assert await b.bodies() == ["only in b"]
    async with run_actors(registry, storage=driver_factory()) as (runtime, client):
        a = client.get_or_create("notes", ["a"])
        assert await a.bodies() == ["only in a"]
        assert await a.count() == 1
        actor_id = await a.resolve()
        await runtime.destroy(actor_id)
        if isinstance(runtime.storage, SQLiteDriver):
            assert not (runtime.storage.data_dir / "actor-db" / f"{actor_id}.sqlite3").exists()
        again = client.get_or_create("notes", ["a"])
        assert await again.bodies() == []
        assert await client.get_or_create("notes", ["b"]).bodies() == ["only in b"]


async def test_on_migrate_runs_first_on_every_start(driver_factory: DriverFactory) -> None:
    CALLS.clear()
    notes = notes_def()
    async with run_actors(Registry([notes]), storage=driver_factory()) as (runtime, client):
        room = client.get_or_create("notes", ["a"])
        await room.add("x")
        assert CALLS == ["on_migrate", "on_create", "create_vars", "on_wake"]
        CALLS.clear()
        await runtime.sleep(await room.resolve())
        assert await room.bodies() == ["x"]
        assert CALLS == ["on_migrate", "create_vars", "on_wake"]


async def test_failed_migration_rolls_back_and_fails_only_that_start(
    driver_factory: DriverFactory,
) -> None:
    broken = actor("broken", state={})

    @broken.on_migrate
    async def migrate(c: Any, db: Any) -> None:
        await db.execute("CREATE TABLE half (x)")
        raise UserError("migration 2 is wrong", code="bad")

    @broken.action
    def ping(c: Any) -> str:
        return "pong"

    notes = notes_def()
    async with run_actors(Registry([broken, notes]), storage=driver_factory()) as (_, client):
        with pytest.raises(DatabaseError, match="migration 2 is wrong") as caught:
            await client.get_or_create("broken", ["a"]).ping()
        assert caught.value.code == "migration_failed"
        assert "rolled back" in caught.value.message
        # Others keep serving.
        assert await client.get_or_create("notes", ["a"]).add("fine") == 1
    # The rolled back table is not there: the next (fixed) migration starts clean.
    fixed = actor("broken", state={})

    @fixed.on_migrate
    async def migrate_fixed(c: Any, db: Any) -> None:
        await db.execute("CREATE TABLE half (x)")

    @fixed.action
    async def tables(c: Any) -> list[str]:
        rows = await c.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return sorted(row["name"] for row in rows if not row["name"].startswith("_pyrivet"))

    async with run_actors(Registry([fixed]), storage=driver_factory()) as (_, client):
        assert await client.get_or_create("broken", ["b"]).tables() == ["half"]


async def test_bad_sql_reaches_the_caller_and_changes_nothing(
    driver_factory: DriverFactory,
) -> None:
    notes = notes_def()
    async with run_actors(Registry([notes]), storage=driver_factory()) as (_, client):
        room = client.get_or_create("notes", ["a"])
        await room.add("x")
        with pytest.raises(DatabaseError, match="syntax error") as syntax:
            await room.run("SELEKT 1")
        assert (syntax.value.group, syntax.value.code) == ("sqlite", "query_failed")
        with pytest.raises(DatabaseError, match="UNIQUE constraint failed") as unique:
            await room.add("x")
        assert unique.value.code == "constraint_violation"
        # A script whose second statement fails leaves nothing of the first.
        with pytest.raises(DatabaseError, match="UNIQUE"):
            await room.run(
                "INSERT INTO notes (body) VALUES ('y'); INSERT INTO notes (body) VALUES ('x')"
            )
        with pytest.raises(DatabaseError, match="parameters need a single statement"):
            await room.run("SELECT ?; SELECT 2", 1)
        with pytest.raises(DatabaseError) as binding:
            await room.run("SELECT ?", 1, 2)
        assert binding.value.code == "invalid_argument"
        assert await room.bodies() == ["x"]
        assert await room.count() == 1


async def test_forbidden_statements(driver_factory: DriverFactory) -> None:
    notes = notes_def()
    async with run_actors(Registry([notes]), storage=driver_factory()) as (_, client):
        room = client.get_or_create("notes", ["a"])
        for sql in (
            "BEGIN",
            "COMMIT",
            "SAVEPOINT x",
            "ATTACH DATABASE ':memory:' AS other",
            "PRAGMA journal_mode = DELETE",
            "DELETE FROM _pyrivet_log",
            "DROP TABLE _pyrivet_log",
            "ALTER TABLE _pyrivet_log RENAME TO x",
            "CREATE TRIGGER t AFTER INSERT ON _pyrivet_log BEGIN SELECT 1; END",
        ):
            with pytest.raises(DatabaseError, match="not allowed") as caught:
                await room.run(sql)
            assert caught.value.code == "forbidden"
        assert await room.run("PRAGMA journal_mode") != []  # reading a pragma is fine
        await room.add("still works")
        assert await room.bodies() == ["still works"]


async def test_transactions_commit_roll_back_and_queue_others(
    driver_factory: DriverFactory,
) -> None:
    notes = notes_def()
    async with run_actors(Registry([notes]), storage=driver_factory()) as (_, client):
        room = client.get_or_create("notes", ["a"])
        await room.add_in_tx(["a", "b"], False)
        with pytest.raises(UserError, match="changed my mind"):
            await room.add_in_tx(["c", "d"], True)
        assert await room.bodies() == ["a", "b"]
        # A plain statement of another action waits until the transaction is done.
        both = await asyncio.gather(room.add_in_tx(["e", "f"], False), room.add("g"))
        assert both[1] == 5
        assert await room.bodies() == ["a", "b", "e", "f", "g"]


async def test_transaction_past_its_deadline_is_rolled_back(clock: MockClock) -> None:
    holder = actor("holder", state={})
    started = asyncio.Event()
    release = asyncio.Event()

    @holder.on_migrate
    async def migrate(c: Any, db: Any) -> None:
        await db.execute("CREATE TABLE IF NOT EXISTS t (x)")

    @holder.action
    async def hold(c: Any) -> None:
        async with c.db.transaction(timeout=5):
            await c.db.execute("INSERT INTO t VALUES ('held')")
            started.set()
            await release.wait()
            await c.db.execute("INSERT INTO t VALUES ('late')")

    @holder.action
    async def insert(c: Any, value: str) -> None:
        await c.db.execute("INSERT INTO t VALUES (?)", value)

    @holder.action
    async def values(c: Any) -> list[str]:
        return [row["x"] for row in await c.db.execute("SELECT x FROM t")]

    async with run_actors(Registry([holder]), clock=clock) as (_, client):
        room = client.get_or_create("holder", ["a"])
        held = asyncio.ensure_future(room.hold())
        await started.wait()
        waiting = asyncio.ensure_future(room.insert("waited"))
        await asyncio.sleep(0)
        assert not waiting.done()
        await clock.advance(5)
        await waiting  # the expired transaction let it through
        release.set()
        with pytest.raises(DatabaseError) as caught:
            await held
        assert caught.value.code == "transaction_expired"
        assert await room.values() == ["waited"]


async def test_actor_without_db_and_bad_definitions() -> None:
    plain = actor("plain", state={})

    @plain.action
    async def use(c: Any) -> Any:
        return await c.db.execute("SELECT 1")

    async with run_actors(Registry([plain])) as (_, client):
        with pytest.raises(DatabaseError, match="db=True") as caught:
            await client.get_or_create("plain", ["a"]).use()
        assert caught.value.code == "not_enabled"
    with pytest.raises(DefinitionError, match="db must be True or False"):
        actor("x", db="yes")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="on_migrate"):
        actor("y").on_migrate(lambda c: None)


async def test_db_true_without_migration() -> None:
    scratch = actor("scratch", state={}, db=True)

    @scratch.action
    async def use(c: Any) -> Any:
        await c.db.execute("CREATE TABLE IF NOT EXISTS t (x)")
        await c.db.execute("INSERT INTO t VALUES (1)")
        return await c.db.execute("SELECT count(*) AS n FROM t")

    async with run_actors(Registry([scratch])) as (_, client):
        assert await client.get_or_create("scratch", ["a"]).use() == [{"n": 1}]


async def test_closed_database_after_sleep() -> None:
    notes = notes_def()
    kept: list[Any] = []

    @notes.action
    def keep_db(c: Any) -> None:
        kept.append(c.db)

    async with run_actors(Registry([notes])) as (runtime, client):
        room = client.get_or_create("notes", ["a"])
        await room.keep_db()
        await runtime.sleep(await room.resolve())
        with pytest.raises(DatabaseError, match="Database is closed") as caught:
            await kept[0].execute("SELECT 1")
        assert caught.value.code == "closed"


async def test_corrupt_file_fails_only_that_actor(tmp_path: Path) -> None:
    notes = notes_def()
    registry = Registry([notes])
    async with run_actors(registry, data_dir=tmp_path) as (_, client):
        bad_id = await client.get_or_create("notes", ["bad"]).resolve()
        await client.get_or_create("notes", ["good"]).add("x")
    (tmp_path / "actor-db" / f"{bad_id}.sqlite3").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / "actor-db" / f"{bad_id}.sqlite3{suffix}").unlink(missing_ok=True)
    async with run_actors(registry, data_dir=tmp_path) as (_, client):
        with pytest.raises(DatabaseError, match="cannot be read") as caught:
            await client.get_or_create("notes", ["bad"]).bodies()
        assert caught.value.code == "open_failed"
        assert await client.get_or_create("notes", ["good"]).bodies() == ["x"]


class LosingStore:
    """Wraps a driver: ``lose`` drops the next commit and reports success (the files as a
    crash between the actor's database commit and the store's commit leaves them);
    ``hold`` makes commits wait for ``release``."""

    def __init__(self, inner: ActorStore) -> None:
        self.inner = inner
        self.lose = False
        self.hold = False
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def commit(self, batch: Sequence[CommitRecord]) -> None:
        if self.hold:
            await self.release.wait()
        if self.lose:
            self.lose = False
            return
        await self.inner.commit(batch)


def ledger_def() -> ActorDefinition[Any]:
    notes = notes_def()

    @notes.action
    async def add_and_put(c: Any, body: str) -> None:
        await c.db.execute("INSERT INTO notes (body) VALUES (?)", body)
        await c.kv.put("last", body)
        c.state["count"] += 1

    @notes.action
    async def last(c: Any) -> Any:
        return await c.kv.get("last")

    @notes.action
    def bump(c: Any) -> None:
        c.state["count"] += 1

    return notes


async def test_lost_store_commit_rolls_forward_from_the_database(
    driver_factory: DriverFactory,
) -> None:
    registry = Registry([ledger_def()])
    losing = LosingStore(driver_factory())
    async with run_actors(registry, storage=losing) as (_, client):
        room = client.get_or_create("notes", ["a"])
        await room.add("kept")
        await room.bump()
        losing.lose = True
        await room.add_and_put("lost")
    # The store lost the last unit (its state, KV and history); the database has it.
    async with run_actors(registry, storage=driver_factory()) as (runtime, client):
        room = client.get_or_create("notes", ["a"])
        assert await room.bodies() == ["kept", "lost"]
        assert await room.count() == 3
        assert await room.last() == "lost"
        history = await runtime.history(await room.resolve())
        assert [entry.name for entry in history][-2:] == ["bump", "add_and_put"]


async def test_units_without_sql_are_logged_by_the_next_unit_with_sql() -> None:
    memory = MemoryDriver()
    losing = LosingStore(memory)
    async with run_actors(Registry([ledger_def()]), storage=losing) as (_, client):
        room = client.get_or_create("notes", ["a"])
        await room.add("one")  # seq 2 (1 was the creation)
        actor_id = await room.resolve()
        losing.hold = True
        bump = asyncio.ensure_future(room.bump())  # seq 3, not durable yet
        add = asyncio.ensure_future(room.add_and_put("two"))  # seq 4
        for _ in range(10):
            await asyncio.sleep(0)
        db = memory.actor_databases().open(actor_id, fresh=False)
        logged = [row[0] for row in db.execute("SELECT seq FROM _pyrivet_log ORDER BY seq")]
        assert logged == [3, 4]
        losing.release.set()
        await asyncio.gather(bump, add)


async def test_failed_store_commit_restarts_the_actor_consistently() -> None:
    notes = notes_def()
    memory = MemoryDriver()
    async with run_actors(Registry([notes]), storage=memory) as (runtime, client):
        room = client.get_or_create("notes", ["a"])
        await room.add("one")
        memory.fail_next_commit(OSError("disk full"))
        with pytest.raises(Exception, match="could not be saved"):
            await room.add("two")
        # The database had committed "two": the actor restarted, and its wake wrote the
        # store's missing commit from the log, so state and SQL agree again.
        for _ in range(20):
            if not runtime.is_awake(await room.resolve()):
                break
            await asyncio.sleep(0)
        assert await room.bodies() == ["one", "two"]
        assert await room.count() == 2


async def test_unencodable_state_rolls_back_the_sql() -> None:
    notes = notes_def()

    @notes.action
    async def add_bad(c: Any) -> None:
        await c.db.execute("INSERT INTO notes (body) VALUES ('bad')")
        c.state["oops"] = object()

    async with run_actors(Registry([notes])) as (_, client):
        room = client.get_or_create("notes", ["a"])
        await room.add("good")
        with pytest.raises(Exception, match="state"):
            await room.add_bad()
        assert await room.bodies() == ["good"]
        assert await room.add("after") == 2


async def test_relaxed_durability_commits_sql_with_the_save(clock: MockClock) -> None:
    notes = notes_def(durability="relaxed")
    memory = MemoryDriver()
    async with run_actors(Registry([notes]), storage=memory, clock=clock) as (_, client):
        room = client.get_or_create("notes", ["a"])
        await room.add("x")
        actor_id = await room.resolve()
        db = memory.actor_databases().open(actor_id, fresh=False)
        pending = [db.in_transaction]  # not committed until the save
        await clock.advance(1.5)
        pending.append(db.in_transaction)
        assert pending == [True, False]
        assert db.execute("SELECT body FROM notes").fetchall() == [("x",)]


def test_split_statements() -> None:
    assert split_statements("SELECT 1") == ["SELECT 1"]
    assert split_statements("SELECT 1;") == ["SELECT 1;"]
    assert split_statements("SELECT ';'; SELECT 2") == ["SELECT ';';", " SELECT 2"]
    trigger = "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); END;"
    assert split_statements(trigger + " SELECT 1;") == [trigger, " SELECT 1;"]
    assert split_statements(" ; ;") == [" ; ;"]


async def test_log_rows_stay_until_the_store_synced_them(tmp_path: Path) -> None:
    """A record the store wrote without its own fsync (its actor's log was synced)
    keeps its log row until a later synced batch of the store covers it."""
    registry = Registry([ledger_def()])
    async with run_actors(registry, data_dir=tmp_path) as (runtime, client):
        room = client.get_or_create("notes", ["a"])
        for n in range(5):
            await room.add(f"n{n}")
        logged = log_reader(runtime, await room.resolve())
        assert logged() == [2, 3, 4, 5, 6]  # none synced by the store yet
        for _ in range(3):
            await room.bump()  # no SQL: the store syncs these batches itself
        await room.add("last")
        assert logged() == [10]


async def test_log_rows_are_trimmed_when_every_unit_writes_sql(tmp_path: Path) -> None:
    """Every unit writes SQL, so the store never syncs a batch of its own: every
    MAX_UNSYNCED_BATCHES batches one is synced anyway, and the log is trimmed."""
    registry = Registry([ledger_def()])
    async with run_actors(registry, data_dir=tmp_path) as (runtime, client):
        room = client.get_or_create("notes", ["a"])
        units = 4 * MAX_UNSYNCED_BATCHES
        for n in range(units):
            await room.add(f"n{n}")
        rows = log_reader(runtime, await room.resolve())()
        # A row goes once two synced batches followed its own: at most ~3 periods stay.
        assert 0 < len(rows) <= 3 * MAX_UNSYNCED_BATCHES
        assert rows[-1] == units + 1


def log_reader(runtime: Any, actor_id: str) -> Callable[[], list[int]]:
    """The seqs in an awake actor's redo log, read through its own connection (the file
    is opened in exclusive locking mode: no other connection can read it meanwhile)."""

    def logged() -> list[int]:
        conn = runtime._svc.dbs.get(actor_id).conn
        return [r[0] for r in conn.execute("SELECT seq FROM _pyrivet_log ORDER BY seq")]

    return logged


async def test_the_example_of_docs_sql_md_runs() -> None:
    text = (Path(__file__).parents[2] / "docs" / "sql.md").read_text()
    source = text.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(compile(source, "docs/sql.md", "exec"), scope)
    async with run_actors(Registry([scope["notes"]])) as (_, client):
        room = client.get_or_create("notes", ["r"])
        assert await room.add("hello") == 1
        assert await room.find("hello") == [{"id": 1, "body": "hello"}]
        await room.move(1, 7)
        assert await room.find("moved") == [{"id": 7, "body": "moved"}]


async def test_concurrent_actors_share_one_sync_barrier(tmp_path: Path) -> None:
    registry = Registry([notes_def()])
    async with run_actors(registry, data_dir=tmp_path) as (runtime, client):
        rooms = [client.get_or_create("notes", [f"r{i}"]) for i in range(8)]
        await asyncio.gather(*(room.add("first") for room in rooms))
        batches_before = runtime.committer_stats()[0]
        await asyncio.gather(*(room.add(f"n{n}") for room in rooms for n in range(5)))
        # 40 units in far fewer store batches, each after one parallel sync of the files.
        assert runtime.committer_stats()[0] - batches_before < 40
        for room in rooms:
            assert await room.bodies() == ["first", "n0", "n1", "n2", "n3", "n4"]
            assert await room.count() == 6


async def test_an_error_that_ends_the_transaction_restarts_the_actor(
    driver_factory: DriverFactory,
) -> None:
    notes = notes_def()

    @notes.action
    async def add_then_rollback(c: Any) -> None:
        await c.db.execute("INSERT INTO notes (body) VALUES ('gone')")
        c.state["count"] += 1
        await c.db.execute("INSERT OR ROLLBACK INTO notes (body) VALUES ('dup')")

    async with run_actors(Registry([notes]), storage=driver_factory()) as (runtime, client):
        room = client.get_or_create("notes", ["a"])
        await room.add("dup")
        with pytest.raises(DatabaseError, match="UNIQUE"):
            await room.add_then_rollback()
        actor_id = await room.resolve()
        for _ in range(50):
            if not runtime.is_awake(actor_id):
                break
            await asyncio.sleep(0)
        # Restarted from what both hold: no 'gone' row, and its count did not stay.
        assert await room.bodies() == ["dup"]
        assert await room.count() == 1


async def test_misuse_is_refused_clearly() -> None:
    notes = notes_def()

    @notes.action
    async def nested(c: Any) -> None:
        async with c.db.transaction(), c.db.transaction():
            pass

    @notes.action
    async def bad_timeout(c: Any) -> None:
        c.db.transaction(timeout=0)

    @notes.action
    async def not_text(c: Any) -> None:
        await c.db.execute(b"SELECT 1")

    @notes.action
    async def both_kinds(c: Any) -> None:
        await c.db.execute("SELECT ?", 1, x=2)

    async with run_actors(Registry([notes])) as (_, client):
        room = client.get_or_create("notes", ["a"])
        for action, code in (
            ("nested", "nested_transaction"),
            ("bad_timeout", "invalid"),
            ("not_text", "invalid"),
            ("both_kinds", "invalid_argument"),
        ):
            with pytest.raises(DatabaseError) as caught:
                await room.action(action)
            assert caught.value.code == code, action
        await room.add("still fine")
        assert await room.bodies() == ["still fine"]


async def test_committer_barrier_orders_and_fails_batches() -> None:
    """The committer writes a batch only after its barrier; a failed barrier fails the
    batch like a failed write, and nothing of it is stored."""
    store = MemoryDriver()
    await store.open()
    committer = Committer(store)
    heard: list[str] = []

    class Listener:
        def committed(self, record: CommitRecord) -> None:
            heard.append(f"ok {record.seq}")

        def failed(self, record: CommitRecord, exc: BaseException) -> None:
            heard.append(f"failed {record.seq}: {exc}")

    loop = asyncio.get_running_loop()
    gate: asyncio.Future[Any] = loop.create_future()
    barriers: list[list[int]] = []

    def barrier(batch: list[CommitRecord]) -> asyncio.Future[Any] | None:
        barriers.append([r.seq for r in batch])
        return gate

    committer.barrier = barrier
    first = committer.submit(CommitRecord("a1", 1, state=b"1"), Listener())
    await asyncio.sleep(0)
    assert barriers == [[1]] and heard == []  # held by the barrier
    gate.set_result(None)
    await first
    assert heard == ["ok 1"]
    assert (await store.load_state("a1")).seq == 1

    gate = loop.create_future()
    gate.set_exception(OSError("sync failed"))
    second = committer.submit(CommitRecord("a1", 2, state=b"2"), Listener())
    with pytest.raises(Exception, match="sync failed"):
        await second
    assert heard[-1].startswith("failed 2")
    assert (await store.load_state("a1")).seq == 1

    # A barrier naming actors whose own files failed: their records fail, others land.
    gate = loop.create_future()
    gate.set_result({"a2": OSError("a2's file failed")})
    other = committer.submit(CommitRecord("a3", 1, state=b"3"), Listener())
    third = committer.submit(CommitRecord("a2", 1, state=b"x"), Listener())
    with pytest.raises(Exception, match="a2's file failed"):
        await third
    await other
    assert (await store.load_state("a3")).seq == 1
    assert (await store.load_state("a2")).seq == 0
    committer.barrier = None
    await committer.aclose()
    await store.close()


@pytest.mark.parametrize(
    ("version", "blob", "message"),
    [(99, b"\x80", "upgrade pyrivet"), (1, b"not msgpack", "cannot be decoded")],
)
async def test_unreadable_redo_log_fails_only_that_actor(
    tmp_path: Path, version: int, blob: bytes, message: str
) -> None:
    registry = Registry([notes_def()])
    async with run_actors(registry, data_dir=tmp_path) as (_, client):
        bad_id = await client.get_or_create("notes", ["bad"]).resolve()
        await client.get_or_create("notes", ["good"]).add("x")
    conn = sqlite3.connect(tmp_path / "actor-db" / f"{bad_id}.sqlite3", isolation_level=None)
    conn.execute("INSERT INTO _pyrivet_log VALUES (1000, ?, ?)", (version, blob))
    conn.close()
    async with run_actors(registry, data_dir=tmp_path) as (_, client):
        with pytest.raises(DatabaseError, match=message) as caught:
            await client.get_or_create("notes", ["bad"]).bodies()
        assert caught.value.code == "open_failed"
        assert await client.get_or_create("notes", ["good"]).bodies() == ["x"]


async def test_on_migrate_may_use_a_transaction(driver_factory: DriverFactory) -> None:
    versioned = actor("versioned", state={})

    @versioned.on_migrate
    async def migrate(c: Any, db: Any) -> None:
        rows = await db.execute("PRAGMA user_version")
        if rows[0]["user_version"] < 1:
            async with db.transaction():
                await db.execute("CREATE TABLE items (name TEXT)")
                await db.execute("PRAGMA user_version = 1")

    @versioned.action
    async def add(c: Any, name: str) -> list[str]:
        await c.db.execute("INSERT INTO items VALUES (?)", name)
        return [row["name"] for row in await c.db.execute("SELECT name FROM items")]

    registry = Registry([versioned])
    async with run_actors(registry, storage=driver_factory()) as (runtime, client):
        room = client.get_or_create("versioned", ["a"])
        assert await room.add("x") == ["x"]
        history = await runtime.history(await room.resolve())
        assert [entry.kind for entry in history] == ["create", "action"]
    async with run_actors(registry, storage=driver_factory()) as (_, client):
        assert await client.get_or_create("versioned", ["a"]).add("y") == ["x", "y"]


def parents_def() -> ActorDefinition[Any]:
    """An actor whose COMMIT can fail: a deferred foreign key is checked only then."""
    family = actor("family", state={"count": 0})

    @family.on_migrate
    async def migrate(c: Any, db: Any) -> None:
        await db.execute(
            """
            CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY);
            CREATE TABLE IF NOT EXISTS child (
                id INTEGER PRIMARY KEY,
                parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED
            );
            """
        )

    @family.action
    async def add(c: Any, orphan: bool) -> int:
        if not orphan:
            await c.db.execute("INSERT OR IGNORE INTO parent (id) VALUES (1)")
        await c.db.execute("INSERT INTO child (parent) VALUES (?)", 2 if orphan else 1)
        c.state["count"] += 1
        return int(c.state["count"])

    @family.action
    async def stored(c: Any) -> tuple[int, int]:
        rows = await c.db.execute("SELECT count(*) AS n FROM child")
        return int(c.state["count"]), int(rows[0]["n"])

    return family


@pytest.mark.parametrize("together", [8, 1])
async def test_a_failed_commit_of_an_actor_file_fails_only_that_actor(
    tmp_path: Path, together: int
) -> None:
    """The SQLite driver commits each actor's file right before syncing it, on the sync
    threads when a batch has several files (inline when it has one). A COMMIT that fails
    there (here: a deferred foreign key) fails that actor's call, restarts it from what
    both files hold, and leaves the other actors of the batch alone."""
    async with run_actors(Registry([parents_def()]), data_dir=tmp_path) as (runtime, client):
        rooms = [client.get_or_create("family", [f"r{i}"]) for i in range(together)]
        for room in rooms:
            await room.add(False)
        results = await asyncio.gather(
            rooms[0].add(True), *(room.add(False) for room in rooms[1:]), return_exceptions=True
        )
        assert isinstance(results[0], Exception) and "FOREIGN KEY" in str(results[0])
        assert results[1:] == [2] * (together - 1)
        actor_id = await rooms[0].resolve()
        for _ in range(50):
            if not runtime.is_awake(actor_id):
                break
            await asyncio.sleep(0)
        assert await rooms[0].stored() == [1, 1]
        assert await rooms[0].add(False) == 2
        for room in rooms[1:]:
            assert await room.stored() == [2, 2]


async def test_a_statement_waits_for_its_actors_commit_on_a_sync_thread(tmp_path: Path) -> None:
    """While an actor's COMMIT runs on a sync thread, a new statement of that actor
    waits for it, so it never lands in the transaction of a unit already submitted."""
    registry = Registry([notes_def()])
    async with run_actors(registry, data_dir=tmp_path) as (runtime, client):
        rooms = [client.get_or_create("notes", [f"r{i}"]) for i in range(8)]
        await asyncio.gather(*(room.add("first") for room in rooms))
        svc = runtime._svc
        assert svc is not None
        db = svc.dbs.get(await rooms[0].resolve())
        assert db is not None
        adds = asyncio.gather(*(room.add("second") for room in rooms))
        seen = []
        for _ in range(1000):
            if db.committing is not None:
                break
            await asyncio.sleep(0)
        seen.append(db.committing is not None)
        await db.execute("INSERT INTO notes (body) VALUES ('between')")  # waits for it
        seen.append(db.committing is not None)
        assert seen == [True, False], "the barrier never ran the commit on a thread"
        await adds
        assert await rooms[0].bodies() == ["first", "second", "between"]
    async with run_actors(registry, data_dir=tmp_path) as (_, client):
        assert await client.get_or_create("notes", ["r0"]).bodies() == [
            "first",
            "second",
            "between",
        ]
