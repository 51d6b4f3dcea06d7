"""The inspector's HTTP routes, ``/gateway/{target}/inspector/...`` (JSON in and out).

* ``GET summary``: ``{actorId, name, key, awake, seq, state, isStateEnabled,
  connections, rpcs, queueSize, isDatabaseEnabled, isWorkflowEnabled, workflowHistory}``;
* ``GET state``: ``{state, isStateEnabled}``; ``PATCH state {state}``: ``{ok, seq}``
  (history entry ``inspector``/``state.replace``);
* ``GET connections``: ``{connections: [{id, details: {params, state, subscriptions}}]}``;
* ``GET rpcs``: ``{rpcs: [names]}``; ``POST action/{name} {args}``: ``{output}``;
* ``GET queue?limit=``: see `views.queue`; ``POST queue {name, body}``: ``{ok, status}``;
  ``DELETE queue``: ``{ok, deleted}``;
* ``GET workflow-history``: ``{history, workflowState, isWorkflowEnabled}``;
  ``POST workflow/replay {entryId?}``: ``{ok}``;
* ``GET schedules``: ``{schedules}``; ``GET kv?limit=``: ``{entries, truncated}``;
* ``GET history?after=0&limit=100&states=1``: ``{entries, next, seq}``;
* ``GET state-at?seq=N``: ``{seq, state, snapshotSeq}``;
* ``GET diff?from=A&to=B``: ``{from, to, changes: [{path, op, before?, after?}]}``;
* ``POST rewind {seq}``: ``{ok, seq, rewoundTo}`` (history entry ``rewind``, args ``[N]``);
* ``database/schema``, ``database/rows``, ``database/execute``: see ``database.py``.

Runs in the request's task on the event loop. The token is checked before the actor
is resolved (`auth.check_token`). Only ``action``, ``PATCH state``, ``rewind``, the
queue writes, ``workflow/replay`` and the database routes wake a sleeping actor;
everything else answers from storage.

Raises (as JSON errors): ``inspector/unauthorized`` (401), ``inspector/disabled``
(403), ``inspector/seq_not_found`` (404), ``inspector/invalid_state`` (400, nothing
changed), ``actor/workflow_in_flight`` (409), ``actor/route_not_found``,
``actor/method_not_allowed``, ``actor/invalid_request`` and the action's own errors.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qs

import msgspec

from ...errors import ActorError, EntryInProgressError, WorkflowUsageError
from ...workflow import Workflow
from .._asgi import BodyTooLarge, HttpReply, Receive, RequestInfo, read_body
from .._state import ServerState
from ..errors import incoming_too_long, invalid_request
from ..gateway import GatewayTarget
from ..routing import Route
from . import views
from .auth import check_token
from .call import Call, Handler
from .database import DATABASE_ROUTES
from .diff import diff

__all__ = ["inspector_http"]


def _limit(call: Call, default: int = 100) -> int:
    return max(1, min(call.int_param("limit", default), views.MAX_PAGE))


async def _latest(call: Call) -> tuple[int, bytes | None]:
    runtime = call.state.runtime
    inst = runtime.awake_instance(call.actor_id)
    if inst is not None:
        return inst.journal.seq, inst.journal.saved_state
    stored = await runtime.storage.load_state(call.actor_id)
    return stored.seq, stored.snapshot


def _is_workflow(call: Call) -> bool:
    definition = call.state.runtime.definition(call.actor.name)
    return isinstance(definition.hooks.get("run"), Workflow)


async def _workflow(call: Call) -> dict[str, Any] | None:
    if not _is_workflow(call):
        return None
    return views.workflow_json(await call.state.runtime.workflow_history(call.actor_id))


async def summary(call: Call) -> Any:
    runtime = call.state.runtime
    definition = runtime.definition(call.actor.name)
    inst = runtime.awake_instance(call.actor_id)
    seq, snapshot = await _latest(call)
    queue = await views.queue(runtime, call.actor_id, call.actor.name, inst, 0)
    return {
        "actorId": call.actor_id,
        "name": call.actor.name,
        "key": list(call.actor.key),
        "awake": inst is not None,
        "seq": seq,
        "state": views.state(runtime, inst, snapshot),
        "isStateEnabled": definition.has_state,
        "connections": views.connections(inst),
        "rpcs": sorted(definition.actions),
        "queueSize": queue["size"],
        "isDatabaseEnabled": definition.has_db,
        "isWorkflowEnabled": _is_workflow(call),
        "workflowHistory": await _workflow(call),
    }


async def get_state(call: Call) -> Any:
    runtime = call.state.runtime
    _seq, snapshot = await _latest(call)
    inst = runtime.awake_instance(call.actor_id)
    return {
        "state": views.state(runtime, inst, snapshot),
        "isStateEnabled": runtime.definition(call.actor.name).has_state,
    }


async def put_state(call: Call) -> Any:
    seq = await call.state.runtime.replace_state(call.actor_id, call.field("state"))
    return {"ok": True, "seq": seq}


async def connections(call: Call) -> Any:
    inst = call.state.runtime.awake_instance(call.actor_id)
    return {"connections": views.connections(inst)}


async def rpcs(call: Call) -> Any:
    return {"rpcs": sorted(call.state.runtime.definition(call.actor.name).actions)}


async def action(call: Call) -> Any:
    if not call.rest:
        raise invalid_request("name the action: POST …/inspector/action/{name}")
    args = call.field("args", [])
    if not isinstance(args, list):
        raise invalid_request("args must be a JSON array")
    output = await call.state.runtime.call_action(call.actor_id, call.rest, args)
    return {"output": views.plain(output)}


async def get_queue(call: Call) -> Any:
    runtime = call.state.runtime
    inst = runtime.awake_instance(call.actor_id)
    return await views.queue(runtime, call.actor_id, call.actor.name, inst, _limit(call))


async def post_queue(call: Call) -> Any:
    name = call.field("name")
    if not isinstance(name, str) or not name:
        raise invalid_request("the message needs a non-empty name: {name, body}")
    outcome = await call.state.runtime.send_queue(call.actor_id, name, call.field("body", None))
    return {"ok": True, "status": outcome.status}


async def delete_queue(call: Call) -> Any:
    return {"ok": True, "deleted": await call.state.runtime.clear_queue(call.actor_id)}


async def workflow_history(call: Call) -> Any:
    history = await _workflow(call)
    return {
        "history": history,
        "workflowState": None if history is None else history["state"],
        "isWorkflowEnabled": history is not None,
    }


async def workflow_replay(call: Call) -> Any:
    entry = call.field("entryId", None)
    if entry is not None and not isinstance(entry, str):
        raise invalid_request("entryId must be a string (an entry key from workflow-history)")
    try:
        await call.state.runtime.replay_workflow(call.actor_id, entry)
    except EntryInProgressError as exc:
        raise ActorError(str(exc), code="workflow_in_flight") from None
    except WorkflowUsageError as exc:
        raise ActorError(str(exc), group="inspector", code="workflow") from None
    return {"ok": True}


async def schedules(call: Call) -> Any:
    return {"schedules": await views.schedules(call.state.runtime, call.actor_id)}


async def kv(call: Call) -> Any:
    return await views.kv(call.state.runtime, call.actor_id, _limit(call))


async def history(call: Call) -> Any:
    states = (call.query.get("states") or ["1"])[0] not in ("0", "false")
    page = await views.history_page(
        call.state.runtime, call.actor_id, max(0, call.int_param("after", 0)), _limit(call), states
    )
    page["seq"] = (await _latest(call))[0]
    return page


async def _state_at(call: Call, seq: int) -> tuple[Any, int]:
    entry = await views.find_snapshot(call.state.runtime, call.actor_id, seq)
    return views.plain_snapshot(entry.state), entry.seq


async def state_at(call: Call) -> Any:
    seq = call.int_param("seq")
    value, at = await _state_at(call, seq)
    return {"seq": seq, "state": value, "snapshotSeq": at}


async def state_diff(call: Call) -> Any:
    """``from`` omitted: the entry before ``to``; when that one is not retained (pruned, or
    ``to`` is the first), the diff is from nothing and ``from`` is null."""
    to = call.int_param("to")
    after = (await _state_at(call, to))[0]
    start: int | None
    if call.query.get("from"):
        start = call.int_param("from")
        before = (await _state_at(call, start))[0]
    else:
        start, before = to - 1, None
        try:
            before = (await _state_at(call, start))[0]
        except ActorError as exc:
            if exc.code != "seq_not_found":
                raise
            start = None
    return {"from": start, "to": to, "changes": diff(before, after)}


async def rewind(call: Call) -> Any:
    seq = call.field("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise invalid_request("the body must be {seq: N}, N a history seq")
    runtime = call.state.runtime
    entry = await views.find_snapshot(runtime, call.actor_id, seq)
    assert entry.state is not None
    value = views.plain_snapshot(entry.state)
    new_seq = await runtime.replace_state(
        call.actor_id, value, kind="rewind", name="rewind", args=[seq]
    )
    return {"ok": True, "seq": new_seq, "rewoundTo": seq}


#: route name -> {method: handler}
ROUTES: Final[dict[str, dict[str, Handler]]] = {
    "summary": {"GET": summary},
    "state": {"GET": get_state, "PATCH": put_state, "PUT": put_state},
    "connections": {"GET": connections},
    "rpcs": {"GET": rpcs},
    "action": {"POST": action},
    "queue": {"GET": get_queue, "POST": post_queue, "DELETE": delete_queue},
    "workflow-history": {"GET": workflow_history},
    "workflow/replay": {"POST": workflow_replay},
    "schedules": {"GET": schedules},
    "kv": {"GET": kv},
    "history": {"GET": history},
    "state-at": {"GET": state_at},
    "diff": {"GET": state_diff},
    "rewind": {"POST": rewind},
    **DATABASE_ROUTES,
}


def _lookup(path: str) -> tuple[dict[str, Handler], str]:
    """The methods of the route ``path`` names, and the rest of the path."""
    path = path.strip("/")
    if path in ROUTES:
        return ROUTES[path], ""
    head, _, rest = path.partition("/")
    if head == "action":
        return ROUTES["action"], rest
    raise ActorError(
        f"no inspector route {path!r}; routes: {', '.join(sorted(ROUTES))}",
        code="route_not_found",
    )


async def inspector_http(
    state: ServerState,
    request: RequestInfo,
    route: Route,
    target: GatewayTarget,
    receive: Receive,
) -> HttpReply:
    """Serve one ``…/inspector/...`` request (see the module docstring).

    Raises:
        ActorError: see the module docstring; the app turns it into the JSON error.
    """
    check_token(state.options.inspector_token, request.header("authorization"))
    methods, rest = _lookup(route.path)
    method = "GET" if request.method == "HEAD" else request.method
    handler = methods.get(method)
    if handler is None:
        allowed = ", ".join(methods)
        raise ActorError(
            f"method {request.method} is not allowed here; use {allowed}",
            code="method_not_allowed",
            metadata={"allowed": allowed},
        )
    body: Any = None
    if method in ("POST", "PATCH", "PUT"):
        try:
            raw = await read_body(receive, state.max_incoming)
        except BodyTooLarge:
            raise incoming_too_long("the request body", None, state.max_incoming) from None
        if raw.strip():
            try:
                body = msgspec.json.decode(raw)
            except msgspec.DecodeError as exc:
                raise invalid_request(f"the body must be JSON: {exc}") from None
    actor = await state.directory.resolve(target)
    call = Call(state, actor, parse_qs(request.query_string), body, rest)
    reply = HttpReply.of(
        200, msgspec.json.encode(await handler(call), enc_hook=repr), "application/json"
    )
    reply.headers.extend(actor.headers())
    return reply
