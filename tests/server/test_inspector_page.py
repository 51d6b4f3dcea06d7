"""The inspector page's files and actor list at ``/ui`` (the browser test drives the
page itself: tests/browser/inspector)."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from pyrivet import Registry, actor

from ._support import query_url
from .conftest import Start

TOKEN = "page-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def registry() -> Registry:
    counter = actor("counter", state={"n": 0})

    @counter.action
    def ping(c: Any) -> int:
        return 1

    room = actor("room", state={})

    @room.action
    def hello(c: Any) -> str:
        return "hi"

    return Registry([counter, room])


def test_the_page_needs_nothing_from_the_network() -> None:
    files = resources.files("pyrivet.server.inspector").joinpath("ui")
    names = sorted(f.name for f in files.iterdir())
    assert names == ["app.js", "index.html", "style.css"]
    for name in names:
        text = files.joinpath(name).read_text()
        assert not re.search(r"https?://|//cdn|@import", text), name


async def test_files_and_the_actor_list(start_server: Start) -> None:
    served = await start_server(registry(), inspector_token=TOKEN)
    http = served.http
    page = await http.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/ui/app.js">' in page.text
    assert (await http.get("/ui/app.js")).headers["content-type"].startswith("text/javascript")
    assert (await http.get("/ui/style.css")).status_code == 200
    assert (await http.get("/ui/nope.js")).status_code == 404
    assert (await http.post("/ui/app.js")).status_code == 405

    for name, key in (("counter", "alpha"), ("counter", "beta"), ("room", "lobby")):
        response = await http.post(
            query_url(name, "/action/" + ("ping" if name == "counter" else "hello"), key=key),
            json={"args": []},
        )
        assert response.status_code == 200
    assert served.runtime is not None
    listed = (await http.get("/ui/api/actors?q=", headers=AUTH)).json()
    assert [(a["name"], a["key"]) for a in listed["actors"]] == [
        ("counter", ["alpha"]),
        ("counter", ["beta"]),
        ("room", ["lobby"]),
    ]
    assert all(a["awake"] for a in listed["actors"]) and listed["truncated"] is False
    await served.runtime.sleep(listed["actors"][0]["actorId"])
    by_key = (await http.get("/ui/api/actors?q=ALP", headers=AUTH)).json()["actors"]
    assert [(a["key"], a["awake"]) for a in by_key] == [(["alpha"], False)]
    by_name = (await http.get("/ui/api/actors?q=room", headers=AUTH)).json()["actors"]
    assert [a["name"] for a in by_name] == ["room"]
    refused = await http.get("/ui/api/actors")
    assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")


async def test_the_page_is_off_with_the_inspector(start_server: Start) -> None:
    served = await start_server(registry())
    response = await served.http.get("/ui")
    assert (response.status_code, response.json()["code"]) == (403, "disabled")
