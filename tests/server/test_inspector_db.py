"""``/gateway/{target}/inspector/database/*`` against the real server: token, schema,
paged rows and execute."""

from __future__ import annotations

from typing import Any

import pytest

from pyrivet import Registry, actor

from ._support import query_url
from .conftest import Start

TOKEN = "s3cret-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def db_registry() -> Registry:
    notes = actor("notes", state={"count": 0})

    @notes.on_migrate
    async def migrate(c: Any, db: Any) -> None:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT, "
            "author INTEGER REFERENCES authors(id));"
            "CREATE VIEW IF NOT EXISTS note_count AS SELECT count(*) AS n FROM notes;"
        )

    @notes.action
    async def add(c: Any, body: str) -> None:
        await c.db.execute("INSERT INTO notes (body) VALUES (?)", body)
        c.state["count"] += 1

    @notes.action
    async def bodies(c: Any) -> list[str]:
        return [r["body"] for r in await c.db.execute("SELECT body FROM notes ORDER BY id")]

    plain = actor("plain", state={})

    @plain.action
    def ping(c: Any) -> str:
        return "pong"

    return Registry([notes, plain])


def db_url(path: str, extra: str = "", name: str = "notes") -> str:
    return query_url(name, f"/inspector/database/{path}", key="a", extra=extra)


async def test_schema_rows_and_execute(start_server: Start) -> None:
    served = await start_server(db_registry(), inspector_token=TOKEN)
    http = served.http
    for n in range(5):
        response = await http.post(
            query_url("notes", "/action/add", key="a"), json={"args": [f"note {n}"]}
        )
        assert response.status_code == 200, response.text

    schema = (await http.get(db_url("schema"), headers=AUTH)).json()
    tables = {t["name"]: t for t in schema["tables"]}
    assert sorted(tables) == ["authors", "note_count", "notes"]  # _pyrivet_log hidden
    assert tables["notes"]["records"] == 5
    assert tables["note_count"]["type"] == "view"
    assert [c["name"] for c in tables["notes"]["columns"]] == ["id", "body", "author"]
    assert tables["notes"]["foreignKeys"] == [{"from": "author", "table": "authors", "to": "id"}]

    page = await http.get(db_url("rows", "table=notes&limit=2&offset=1"), headers=AUTH)
    assert page.json() == {
        "rows": [
            {"id": 2, "body": "note 1", "author": None},
            {"id": 3, "body": "note 2", "author": None},
        ]
    }

    written = await http.post(
        db_url("execute"),
        json={
            "sql": "INSERT INTO notes (body) VALUES (?) RETURNING id",
            "args": ["from inspector"],
        },
        headers=AUTH,
    )
    assert written.json() == {"rows": [{"id": 6}]}
    named = await http.post(
        db_url("execute"),
        json={"sql": "SELECT body FROM notes WHERE id = :id", "properties": {"id": 6}},
        headers=AUTH,
    )
    assert named.json() == {"rows": [{"body": "from inspector"}]}
    response = await http.post(query_url("notes", "/action/bodies", key="a"), json={"args": []})
    assert response.json()["output"][-1] == "from inspector"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [({}, 401, "unauthorized"), ({"authorization": "Bearer wrong"}, 401, "unauthorized")],
)
async def test_token_is_required(
    start_server: Start, headers: dict[str, str], status: int, code: str
) -> None:
    served = await start_server(db_registry(), inspector_token=TOKEN)
    response = await served.http.get(db_url("schema"), headers=headers)
    assert response.status_code == status
    assert (response.json()["group"], response.json()["code"]) == ("inspector", code)
    # A refused request creates no actor.
    assert served.runtime is not None
    assert await served.runtime.storage.list_actors() == []


async def test_without_a_token_the_inspector_is_off(
    start_server: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYRIVET_INSPECTOR_TOKEN", raising=False)
    served = await start_server(db_registry())
    response = await served.http.get(db_url("schema"), headers=AUTH)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "disabled"
    assert "PYRIVET_INSPECTOR_TOKEN" in body["message"]


async def test_token_from_the_environment(
    start_server: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYRIVET_INSPECTOR_TOKEN", TOKEN)
    served = await start_server(db_registry())
    response = await served.http.get(db_url("schema"), headers=AUTH)
    assert response.status_code == 200


async def test_bad_requests(start_server: Start) -> None:
    served = await start_server(db_registry(), inspector_token=TOKEN)
    http = served.http

    async def error(response: Any) -> tuple[int, str]:
        return response.status_code, response.json()["code"]

    assert await error(
        await http.post(db_url("execute"), json={"sql": "SELEKT"}, headers=AUTH)
    ) == (400, "query_failed")
    assert await error(await http.post(db_url("execute"), content=b"{not json", headers=AUTH)) == (
        400,
        "invalid_request",
    )
    assert await error(
        await http.post(
            db_url("execute"), json={"sql": "SELECT 1", "args": [], "properties": {}}, headers=AUTH
        )
    ) == (400, "invalid_request")
    assert await error(await http.get(db_url("rows", "table=missing"), headers=AUTH)) == (
        404,
        "no_such_table",
    )
    assert await error(await http.get(db_url("rows"), headers=AUTH)) == (400, "invalid_request")
    assert await error(await http.get(db_url("rows", "table=notes&limit=x"), headers=AUTH)) == (
        400,
        "invalid_request",
    )
    assert await error(await http.get(db_url("rows", "table=notes&offset=-1"), headers=AUTH)) == (
        400,
        "invalid_argument",
    )
    assert await error(await http.get(db_url("rows", "table=_pyrivet_log"), headers=AUTH)) == (
        404,
        "no_such_table",
    )
    assert await error(await http.get(db_url("execute"), headers=AUTH)) == (
        405,
        "method_not_allowed",
    )
    assert await error(
        await http.get(query_url("notes", "/inspector/nope", key="a"), headers=AUTH)
    ) == (404, "route_not_found")
    assert await error(await http.get(db_url("schema", name="plain"), headers=AUTH)) == (
        400,
        "not_enabled",
    )
