"""``/gateway/{actor}/inspector/...`` against the real server: summary, state, console,
queue, schedules, KV, history, state at a seq, diff, rewind, and their bad input."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from pyrivet import ActorOptions, Client, Queue, QueueError, Registry, actor
from pyrivet.workflow import workflow

from ._support import query_url
from .conftest import Served, Start

TOKEN = "inspect-me"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@dataclass
class Cart:
    items: list[str] = field(default_factory=list)
    total: int = 0


def registry() -> Registry:
    counter = actor("counter", state={"count": 0, "tags": []}, queues={"jobs": Queue()})

    @counter.action
    async def add(c: Any, amount: int, tag: str = "") -> int:
        c.state["count"] += amount
        if tag:
            c.state["tags"].append(tag)
            await c.kv.put(f"tag:{tag}", amount)
        c.broadcast("count", c.state["count"])
        return int(c.state["count"])

    @counter.action
    def later(c: Any) -> str:
        return str(c.schedule.after(3600, "add", 1))

    @counter.action
    def noop(c: Any) -> None:
        return None

    cart = actor("cart", state=Cart())

    @cart.action
    def put(c: Any, item: str, price: int) -> int:
        c.state.items.append(item)
        c.state.total += price
        return int(c.state.total)

    return Registry([counter, cart])


def url(path: str, name: str = "counter", key: str = "k", extra: str = "") -> str:
    return query_url(name, f"/inspector/{path}", key=key, method="get", extra=extra)


async def call(served: Served, action: str, *args: Any, name: str = "counter") -> Any:
    response = await served.http.post(
        query_url(name, f"/action/{action}", key="k"), json={"args": list(args)}
    )
    assert response.status_code == 200, response.text
    return response.json()["output"]


async def get(served: Served, path: str, **kw: Any) -> Any:
    response = await served.http.get(url(path, **kw), headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


@pytest.fixture
async def served(start_server: Start) -> Served:
    return await start_server(registry(), inspector_token=TOKEN)


async def test_summary_state_connections_rpcs(served: Served) -> None:
    await call(served, "add", 2, "a")
    summary = await get(served, "summary")
    assert summary["name"] == "counter" and summary["key"] == ["k"]
    assert summary["state"] == {"count": 2, "tags": ["a"]}
    assert summary["rpcs"] == ["add", "later", "noop"]
    assert summary["isStateEnabled"] and not summary["isWorkflowEnabled"]
    assert summary["queueSize"] == 0 and summary["connections"] == []
    assert summary["seq"] >= 2
    assert await get(served, "state") == {
        "state": {"count": 2, "tags": ["a"]},
        "isStateEnabled": True,
    }
    assert await get(served, "rpcs") == {"rpcs": ["add", "later", "noop"]}
    assert await get(served, "connections") == {"connections": []}
    assert await get(served, "workflow-history") == {
        "history": None,
        "workflowState": None,
        "isWorkflowEnabled": False,
    }


async def test_replace_state_commits_with_an_inspector_entry(served: Served) -> None:
    await call(served, "add", 1)
    response = await served.http.patch(
        url("state"), json={"state": {"count": 40, "tags": ["x"]}}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    seq = response.json()["seq"]
    assert await call(served, "add", 2) == 42
    entries = (await get(served, "history"))["entries"]
    edit = next(e for e in entries if e["seq"] == seq)
    assert (edit["kind"], edit["name"], edit["by"]) == ("inspector", "state.replace", "inspector")
    assert edit["state"] == {"count": 40, "tags": ["x"]}


async def test_replace_with_a_state_that_does_not_fit_changes_nothing(served: Served) -> None:
    assert await call(served, "put", "pen", 3, name="cart") == 3
    before = await get(served, "history", name="cart")
    bad = await served.http.patch(
        url("state", name="cart"), json={"state": {"items": "not a list"}}, headers=AUTH
    )
    assert error(bad) == (400, "invalid_state")
    assert "state type" in bad.json()["message"]
    missing = await served.http.patch(url("state", name="cart"), json={"nope": 1}, headers=AUTH)
    assert error(missing) == (400, "invalid_request")
    assert await get(served, "history", name="cart") == before
    assert (await get(served, "state", name="cart"))["state"] == {"items": ["pen"], "total": 3}
    # A good replacement is converted into the dataclass: actions keep working on it.
    good = await served.http.patch(
        url("state", name="cart"), json={"state": {"items": [], "total": 10}}, headers=AUTH
    )
    assert good.status_code == 200, good.text
    assert await call(served, "put", "ink", 5, name="cart") == 15


async def test_action_console_and_its_errors(served: Served) -> None:
    await call(served, "noop")
    response = await served.http.post(url("action/add"), json={"args": [5, "t"]}, headers=AUTH)
    assert response.json() == {"output": 5}
    unknown = await served.http.post(url("action/nope"), json={"args": []}, headers=AUTH)
    assert error(unknown) == (404, "action_not_found")
    bad_args = await served.http.post(url("action/add"), json={"args": "x"}, headers=AUTH)
    assert error(bad_args) == (400, "invalid_request")


async def test_queue_inject_list_clear(served: Served) -> None:
    await call(served, "noop")
    for n in range(3):
        sent = await served.http.post(url("queue"), json={"name": "jobs", "body": n}, headers=AUTH)
        assert sent.status_code == 200, sent.text
    listed = await get(served, "queue", extra="limit=2")
    assert listed["size"] == 3 and listed["truncated"] is True
    assert [m["body"] for m in listed["messages"]] == [0, 1]
    empty_name = await served.http.post(url("queue"), json={"name": "", "body": 1}, headers=AUTH)
    assert error(empty_name) == (400, "invalid_request")
    assert served.runtime is not None
    handle = Client(served.runtime).get_or_create("counter", ["k"])
    waiting = asyncio.ensure_future(handle.send("jobs", "wait-for-me", wait=True, timeout=60))
    async with asyncio.timeout(10):
        while True:
            if (await get(served, "queue"))["size"] == 4:
                break
            await asyncio.sleep(0.005)
    cleared = await served.http.delete(url("queue"), headers=AUTH)
    assert cleared.json() == {"ok": True, "deleted": 4}
    # A sender waiting for a cleared message's completion is told, not left waiting.
    with pytest.raises(QueueError) as dropped:
        await waiting
    assert dropped.value.code == "completion_waiter_dropped"
    assert (await get(served, "queue"))["size"] == 0
    assert served.runtime is not None
    await served.runtime.sleep(await _actor_id(served))
    assert (await get(served, "queue"))["size"] == 0  # from storage: the clear is durable


async def _actor_id(served: Served, name: str = "counter") -> str:
    return str((await get(served, "summary", name=name))["actorId"])


async def test_schedules_and_kv(served: Served) -> None:
    alarm = await call(served, "later")
    await call(served, "add", 1, "blue")
    schedules = (await get(served, "schedules"))["schedules"]
    assert [(s["id"], s["action"], s["args"]) for s in schedules] == [(alarm, "add", [1])]
    kv = await get(served, "kv")
    assert kv["truncated"] is False
    assert len(kv["entries"]) == 1 and "blue" in str(kv["entries"][0]["key"])


async def test_history_pages_state_at_and_diff(served: Served) -> None:
    for n in range(5):
        await call(served, "add", 1, f"t{n}")
    page = await get(served, "history", extra="limit=2")
    assert [e["seq"] for e in page["entries"]] == [1, 2] and page["next"] == 2
    assert page["entries"][0]["kind"] == "create"
    second = await get(served, "history", extra="after=2&limit=100&states=0")
    actions = [e for e in second["entries"] if e["kind"] == "action"]
    assert actions[0]["name"] == "add" and actions[0]["args"] == [1, "t1"]
    assert "state" not in actions[0] and actions[0]["stateChanged"]
    assert any(op[0] == "kv.put" for op in actions[0]["ops"])
    assert second["next"] is None and second["seq"] == second["entries"][-1]["seq"]

    first_add = page["entries"][1]["seq"]
    at = await get(served, "state-at", extra=f"seq={first_add}")
    assert at["state"] == {"count": 1, "tags": ["t0"]} and at["snapshotSeq"] == first_add
    changes = (await get(served, "diff", extra=f"from={first_add}&to={first_add + 1}"))["changes"]
    assert changes == [
        {"path": "count", "op": "change", "before": 1, "after": 2},
        {"path": "tags[1]", "op": "add", "after": "t1"},
    ]
    # Without `from`: the previous entry; before the first, nothing (`from` null).
    assert (await get(served, "diff", extra=f"to={first_add + 1}"))["changes"] == changes
    first = await get(served, "diff", extra="to=1")
    assert first["from"] is None
    assert first["changes"] == [
        {"path": "", "op": "change", "before": None, "after": {"count": 0, "tags": []}}
    ]


async def test_a_seq_that_does_not_exist(served: Served) -> None:
    await call(served, "add", 1)
    for path in ("state-at?seq=999", "state-at?seq=0", "diff?from=1&to=999"):
        name, _, query = path.partition("?")
        assert error(await served.http.get(url(name, extra=query), headers=AUTH)) == (
            404,
            "seq_not_found",
        )
    assert error(await served.http.get(url("state-at", extra="seq=x"), headers=AUTH)) == (
        400,
        "invalid_request",
    )
    bad = await served.http.post(url("rewind"), json={"seq": 999}, headers=AUTH)
    assert error(bad) == (404, "seq_not_found")
    assert error(await served.http.post(url("rewind"), json={"seq": "1"}, headers=AUTH)) == (
        400,
        "invalid_request",
    )


async def test_rewind_is_a_new_audited_undoable_commit(served: Served) -> None:
    await call(served, "add", 1, "a")
    await call(served, "add", 10, "b")
    history = (await get(served, "history"))["entries"]
    target = next(e["seq"] for e in history if e.get("state") == {"count": 1, "tags": ["a"]})
    latest = history[-1]["seq"]
    rewound = (await served.http.post(url("rewind"), json={"seq": target}, headers=AUTH)).json()
    assert rewound["ok"] and rewound["seq"] == latest + 1 and rewound["rewoundTo"] == target
    assert (await get(served, "state"))["state"] == {"count": 1, "tags": ["a"]}
    entry = (await get(served, "history", extra=f"after={latest}"))["entries"][0]
    assert (entry["kind"], entry["args"], entry["by"]) == ("rewind", [target], "inspector")
    # Undo: rewind to the entry before the rewind.
    undo = await served.http.post(url("rewind"), json={"seq": latest}, headers=AUTH)
    assert undo.status_code == 200, undo.text
    assert await call(served, "add", 0) == 11


async def test_token_and_disabled(start_server: Start) -> None:
    on = await start_server(registry(), inspector_token=TOKEN)
    await call(on, "noop")
    assert error(await on.http.get(url("summary"))) == (401, "unauthorized")
    wrong = {"authorization": "Bearer nope"}
    assert error(await on.http.get(url("summary"), headers=wrong)) == (401, "unauthorized")
    assert error(await on.http.post(url("rewind"), json={"seq": 1}, headers=wrong)) == (
        401,
        "unauthorized",
    )
    off = await start_server(registry())
    assert error(await off.http.get(url("summary"), headers=AUTH)) == (403, "disabled")


async def test_reads_of_a_sleeping_actor_do_not_wake_it(served: Served) -> None:
    runtime = served.runtime
    assert runtime is not None
    await call(served, "add", 3, "z")
    actor_id = await _actor_id(served)
    await runtime.sleep(actor_id)
    assert not runtime.is_awake(actor_id)
    summary = await get(served, "summary")
    assert summary["awake"] is False and summary["state"] == {"count": 3, "tags": ["z"]}
    for path in ("state", "history", "connections", "queue", "schedules", "kv", "rpcs"):
        await get(served, path)
    assert (await get(served, "state-at", extra="seq=1"))["state"] == {"count": 0, "tags": []}
    assert not runtime.is_awake(actor_id)
    # Writing needs the actor: a replace wakes it.
    response = await served.http.patch(
        url("state"), json={"state": {"count": 9, "tags": []}}, headers=AUTH
    )
    assert response.status_code == 200
    assert runtime.is_awake(actor_id)
    # The by-id form of the gateway path reaches the same actor.
    by_id = await served.http.get(f"/gateway/{actor_id}/inspector/state", headers=AUTH)
    assert by_id.json()["state"] == {"count": 9, "tags": []}


async def test_unknown_route_and_method(served: Served) -> None:
    await call(served, "noop")
    assert error(await served.http.get(url("nope"), headers=AUTH)) == (404, "route_not_found")
    assert error(await served.http.delete(url("state"), headers=AUTH)) == (
        405,
        "method_not_allowed",
    )
    assert error(await served.http.post(url("rewind"), content=b"{not json", headers=AUTH)) == (
        400,
        "invalid_request",
    )


async def test_workflow_history_and_replay(start_server: Start) -> None:
    flow = actor("flow", state={"runs": 0})

    def bump(c: Any) -> int:
        c.state["runs"] += 1
        return int(c.state["runs"])

    @flow.run
    @workflow
    async def steps(ctx: Any) -> int:
        return int(await ctx.step("bump", bump))

    @flow.action
    def runs(c: Any) -> int:
        return int(c.state["runs"])

    served = await start_server(Registry([flow]), inspector_token=TOKEN)
    await call(served, "runs", name="flow")
    runtime = served.runtime
    assert runtime is not None
    await runtime.drain()
    history = await get(served, "workflow-history", name="flow")
    assert history["isWorkflowEnabled"] is True
    assert history["workflowState"] == "completed"
    assert [(e["name"], e["status"], e["output"]) for e in history["history"]["entries"]] == [
        ("bump", "completed", 1)
    ]
    replay = await served.http.post(url("workflow/replay", name="flow"), json={}, headers=AUTH)
    assert replay.json() == {"ok": True}
    for _ in range(100):
        if (await get(served, "workflow-history", name="flow"))["workflowState"] == "completed":
            break
    assert await call(served, "runs", name="flow") == 2
    assert (await get(served, "summary", name="flow"))["isWorkflowEnabled"] is True
    bad = await served.http.post(
        url("workflow/replay", name="flow"), json={"entryId": "nope"}, headers=AUTH
    )
    assert error(bad) == (400, "workflow")


async def test_replace_refuses_a_stateless_type_and_an_oversized_state(start_server: Start) -> None:
    stateless = actor("stateless")

    @stateless.action
    def ping(c: Any) -> int:
        return 1

    small = actor("small", state={"s": ""}, options=ActorOptions(max_state_size=64))

    @small.action
    def value(c: Any) -> str:
        return str(c.state["s"])

    served = await start_server(Registry([stateless, small]), inspector_token=TOKEN)
    await call(served, "ping", name="stateless")
    await call(served, "value", name="small")
    no_state = await served.http.patch(
        url("state", name="stateless"), json={"state": {}}, headers=AUTH
    )
    assert error(no_state) == (400, "no_state")
    assert (await get(served, "state", name="stateless"))["isStateEnabled"] is False
    big = await served.http.patch(
        url("state", name="small"), json={"state": {"s": "x" * 200}}, headers=AUTH
    )
    assert error(big) == (400, "invalid_state") and "max_state_size" in big.json()["message"]
    assert await call(served, "value", name="small") == ""
    unencodable = await served.http.patch(
        url("state", name="small"), json={"state": {"s": 2**70}}, headers=AUTH
    )
    assert error(unencodable) == (400, "invalid_state")
    no_name = await served.http.post(url("action/", name="small"), json={}, headers=AUTH)
    assert error(no_name) == (400, "invalid_request")
    head = await served.http.head(url("rpcs", name="small"), headers=AUTH)
    assert head.status_code == 200
