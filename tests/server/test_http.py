"""Metadata, management API, gateway routes and actions over HTTP, in every encoding."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from pyrivet._codec import cbor
from pyrivet._protocol.messages import Encoding

from ._support import (
    ENCODINGS,
    action_output,
    action_request,
    cbor_input_b64url,
    http_error,
    make_registry,
    query_url,
)
from .conftest import Served, Start


async def post_action(
    served: Served, url: str, args: list[Any], encoding: Encoding, **headers: str
) -> tuple[int, Any, dict[str, str]]:
    body, base_headers = action_request(args, encoding)
    response = await served.http.post(url, content=body, headers={**base_headers, **headers})
    if response.status_code == 200:
        assert response.headers["content-type"] == (
            "application/json" if encoding == "json" else "application/octet-stream"
        )
        return 200, action_output(response.content, encoding), dict(response.headers)
    error = http_error(response.content, response.headers["content-type"], encoding)
    return response.status_code, error, dict(response.headers)


async def test_metadata_answers_what_the_client_awaits_first(served: Served) -> None:
    response = await served.http.get("/metadata?namespace=default")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["runtime"] == "pyrivet"
    assert set(body["actorNames"]) == {"counter", "guarded", "web"}
    assert "clientEndpoint" not in body


async def test_metadata_reports_a_configured_client_endpoint(start_server: Start) -> None:
    served = await start_server(make_registry(), client_endpoint="http://edge:6420")
    body = (await served.http.get("/metadata")).json()
    assert body["clientEndpoint"] == "http://edge:6420"


async def test_health_and_root(served: Served) -> None:
    assert (await served.http.get("/health")).text == "ok"
    assert "pyrivet" in (await served.http.get("/")).text
    missing = await served.http.get("/devtools/mod.js")
    assert missing.status_code == 404
    assert missing.json()["code"] == "route_not_found"


async def test_app_owning_its_runtime_starts_it_with_the_lifespan(start_server: Start) -> None:
    served = await start_server(make_registry(), owned=True)
    assert served.app.runtime is not None
    status, output, _ = await post_action(
        served, query_url("counter", "/action/increment", key="k"), [3], "json"
    )
    assert (status, output) == (200, 3)


# -- management API ------------------------------------------------------------------


async def test_put_actors_gets_or_creates_and_reports_created(served: Served) -> None:
    body = {
        "name": "counter",
        "key": "room/with\\/slash",
        "runner_name_selector": "default",
        "crash_policy": "sleep",
        "input": base64.b64encode(cbor.encode({"hello": 1})).decode(),
    }
    first = await served.http.put("/actors?namespace=default", json=body)
    assert first.status_code == 200, first.text
    assert first.json()["created"] is True
    actor = first.json()["actor"]
    assert actor["name"] == "counter"
    assert actor["key"] == "room/with\\/slash"
    assert isinstance(actor["create_ts"], int)
    assert actor["destroy_ts"] is None

    again = await served.http.put("/actors?namespace=default", json=body)
    assert again.json() == {"actor": actor, "created": False}

    # The key parts are ("room", "with/slash") and the input reached create_state.
    url = query_url("counter", "/action/get_input", key="room,with%2Fslash")
    status, output, _ = await post_action(served, url, [], "json")
    assert (status, output) == (200, {"hello": 1})


async def test_get_actors_by_name_and_key_and_by_ids(served: Served) -> None:
    created = await served.http.post("/actors", json={"name": "counter", "key": "a/b"})
    assert created.status_code == 200, created.text
    actor = created.json()["actor"]

    found = await served.http.get("/actors", params={"name": "counter", "key": "a/b"})
    assert found.json() == {"actors": [actor]}
    none = await served.http.get("/actors", params={"name": "counter", "key": "nope"})
    assert none.json() == {"actors": []}
    by_ids = await served.http.get(
        "/actors", params={"actor_ids": f"{actor['actor_id']},unknown", "namespace": "default"}
    )
    assert by_ids.json() == {"actors": [actor]}
    one = await served.http.get(f"/actors/{actor['actor_id']}")
    assert one.json() == {"actor": actor}

    for bad_query in ({"limit": "0"}, {"limit": "x"}, {"cursor": "nope"}):
        bad = await served.http.get("/actors", params=bad_query)
        assert bad.status_code == 400
        assert bad.json()["code"] == "invalid_request"


async def test_post_actors_refuses_a_taken_key(served: Served) -> None:
    first = await served.http.post("/actors", json={"name": "counter", "key": "dup"})
    assert first.status_code == 200
    second = await served.http.post("/actors", json={"name": "counter", "key": "dup"})
    assert second.status_code == 409
    assert second.json()["code"] == "duplicate_key"
    assert second.headers["x-rivet-error"] == "actor.duplicate_key"


async def test_unknown_actor_type_is_not_found(served: Served) -> None:
    response = await served.http.put("/actors", json={"name": "ghost", "key": "x"})
    assert response.status_code == 404
    assert response.json()["group"] == "actor"
    assert response.json()["code"] == "not_found"


async def test_delete_actor_destroys_it(served: Served) -> None:
    created = await served.http.post("/actors", json={"name": "counter", "key": "doomed"})
    actor_id = created.json()["actor"]["actor_id"]
    status, output, _ = await post_action(
        served, f"/gateway/{actor_id}/action/increment", [5], "json"
    )
    assert (status, output) == (200, 5)

    deleted = await served.http.delete(f"/actors/{actor_id}")
    assert deleted.status_code == 200
    assert deleted.json() == {}
    gone = await served.http.get("/actors", params={"actor_ids": actor_id})
    assert gone.json() == {"actors": []}
    again = await served.http.delete(f"/actors/{actor_id}")
    assert again.status_code == 404
    status, error, _ = await post_action(served, f"/gateway/{actor_id}/action/get", [], "json")
    assert (status, error.code) == (404, "not_found")
    # The key is free again: a new actor starts from scratch.
    status, output, _ = await post_action(
        served, query_url("counter", "/action/get", key="doomed"), [], "json"
    )
    assert (status, output) == (200, 0)


async def test_management_rejects_malformed_bodies(served: Served) -> None:
    for body in (b"{", b"[]", b'{"key": "x"}', b'{"name": "counter", "input": "%%%"}'):
        response = await served.http.put("/actors", content=body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "invalid_request"
    assert (await served.http.get("/actors", params={"name": "counter", "key": "x"})).json() == {
        "actors": []
    }


# -- gateway: both URL forms, actions ----------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_actions_through_query_and_direct_gateway_forms(
    served: Served, encoding: Encoding
) -> None:
    url = query_url("counter", "/action/increment", key=f"cap-{encoding}%2Csub")
    status, output, headers = await post_action(served, url, [5], encoding)
    assert (status, output) == (200, 5)
    actor_id = headers["x-rivet-actor"]
    assert headers["x-rivet-actor-key"] == f"cap-{encoding}/sub"
    assert headers["x-rivet-actor-generation"] == "1"

    status, output, _ = await post_action(served, url, [2], encoding)
    assert (status, output) == (200, 7)
    # The direct form reaches the same actor; a token after @ is accepted.
    status, output, _ = await post_action(
        served, f"/gateway/{actor_id}@some-token/action/get", [], encoding
    )
    assert (status, output) == (200, 7)
    # get (no create) of the same key also finds it.
    get_url = query_url("counter", "/action/get", key=f"cap-{encoding}%2Csub", method="get")
    status, output, _ = await post_action(served, get_url, [], encoding)
    assert (status, output) == (200, 7)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_action_arguments_and_outputs_round_trip(served: Served, encoding: Encoding) -> None:
    value = [1, -(2**60), 2.5, "text", None, True, b"\x00\xff", {"nested": [1, {"a": "b"}]}]
    url = query_url("counter", "/action/echo", key="echo")
    status, output, _ = await post_action(served, url, value, encoding)
    assert status == 200
    assert output == value


async def test_get_of_a_missing_actor_is_a_json_not_found_for_every_encoding(
    served: Served,
) -> None:
    for encoding in ENCODINGS:
        url = query_url("counter", "/action/get", key="missing", method="get")
        body, headers = action_request([], encoding)
        response = await served.http.post(url, content=body, headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-rivet-error"] == "actor.not_found"
        assert response.json()["group"] == "actor"
        assert response.json()["code"] == "not_found"


async def test_input_from_rvt_input_reaches_create_state(served: Served) -> None:
    url = query_url(
        "counter",
        "/action/get_input",
        key="with-input",
        extra=f"rvt-input={cbor_input_b64url({'seed': [1, 2]})}",
    )
    status, output, _ = await post_action(served, url, [], "bare")
    assert (status, output) == (200, {"seed": [1, 2]})


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_user_errors_keep_code_and_metadata(served: Served, encoding: Encoding) -> None:
    url = query_url("counter", "/action/increment", key="errors")
    status, error, headers = await post_action(served, url, [-3], encoding)
    assert status == 500
    assert (error.group, error.code) == ("user", "negative_amount")
    assert error.message == "amount must be positive"
    assert error.metadata == {"amount": -3}
    assert error.actor is not None
    assert error.actor.key == "errors"
    assert headers["x-rivet-error"] == "user.negative_amount"


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_internal_errors_carry_no_details(
    served: Served, encoding: Encoding, caplog: pytest.LogCaptureFixture
) -> None:
    url = query_url("counter", "/action/boom", key="errors")
    body, headers = action_request([], encoding)
    response = await served.http.post(url, content=body, headers=headers)
    assert response.status_code == 500
    assert b"secret" not in response.content
    error = http_error(response.content, response.headers["content-type"], encoding)
    assert (error.group, error.code) == ("core", "internal_error")
    assert error.message == "An internal error occurred"
    assert error.metadata is None
    assert "secret database password" in caplog.text


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_unknown_action_and_wrong_arity(served: Served, encoding: Encoding) -> None:
    url = query_url("counter", "/action/nope", key="arity")
    status, error, _ = await post_action(served, url, [], encoding)
    assert (status, error.code) == (404, "action_not_found")
    # Nothing was created for a call that could not run.
    listed = await served.http.get("/actors", params={"name": "counter", "key": "arity"})
    assert listed.json() == {"actors": []}

    url = query_url("counter", "/action/increment", key="arity")
    status, error, _ = await post_action(served, url, [1, 2, 3], encoding)
    assert (status, error.code) == (400, "invalid_arguments")


async def test_http_actions_run_with_the_conn_params_header(served: Served) -> None:
    url = query_url("guarded", "/action/hello", key="g")
    status, output, _ = await post_action(
        served, url, [], "json", **{"x-rivet-conn-params": '{"token":"secret","user":"bob"}'}
    )
    assert (status, output) == (200, "hi bob")

    status, error, _ = await post_action(served, url, [], "cbor")
    assert status == 500
    assert (error.group, error.code, error.metadata) == ("user", "forbidden", {"hint": "token"})

    status, error, _ = await post_action(
        served, url, [], "json", **{"x-rivet-conn-params": "{not json"}
    )
    assert (status, error.code) == (400, "invalid_request")


async def test_action_route_only_takes_post(served: Served) -> None:
    response = await served.http.get(query_url("counter", "/action/get", key="m"))
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_queue_route_only_takes_post(served: Served) -> None:
    response = await served.http.get(query_url("counter", "/queue/jobs", key="q"))
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_queue_send_to_an_actor_without_queues_is_accepted_and_dropped(
    served: Served,
) -> None:
    # RivetKit accepts sends to undeclared queues; pyrivet logs and counts them.
    response = await served.http.post(
        query_url("counter", "/queue/jobs", key="q"),
        content=b'{"body":{"job":1},"name":"jobs","wait":false}',
        headers={"x-rivet-encoding": "json"},
    )
    assert (response.status_code, response.json()) == (200, {"status": "completed"})
    assert served.runtime is not None
    assert served.runtime._services.queue_waiters.dropped_unknown == 1


async def test_gateway_health_and_metadata(served: Served) -> None:
    health = await served.http.get(query_url("counter", "/health", key="h"))
    assert (health.status_code, health.text) == (200, "ok")
    actor_id = health.headers["x-rivet-actor"]
    meta = await served.http.get(f"/gateway/{actor_id}/metadata")
    assert meta.json()["name"] == "counter"
    assert meta.json()["actorId"] == actor_id
    unknown = await served.http.get(f"/gateway/{actor_id}/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "route_not_found"


# -- CORS ----------------------------------------------------------------------------


async def test_cors_preflight_echoes_origin_and_requested_headers(served: Served) -> None:
    response = await served.http.options(
        query_url("counter", "/action/increment", key="cors"),
        headers={
            "origin": "http://localhost:5173",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-rivet-encoding,x-rivet-conn-params",
        },
    )
    assert response.status_code == 204
    h = response.headers
    assert h["access-control-allow-origin"] == "http://localhost:5173"
    assert h["access-control-allow-credentials"] == "true"
    assert "PUT" in h["access-control-allow-methods"]
    assert h["access-control-allow-headers"] == "content-type,x-rivet-encoding,x-rivet-conn-params"
    # The preflight did not reach (or create) the actor.
    listed = await served.http.get("/actors", params={"name": "counter", "key": "cors"})
    assert listed.json() == {"actors": []}


async def test_cors_headers_on_responses_and_errors(served: Served) -> None:
    origin = {"origin": "https://app.example"}
    ok = await served.http.get("/metadata", headers=origin)
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert ok.headers["access-control-allow-credentials"] == "true"
    assert ok.headers["access-control-expose-headers"] == "*"
    assert "Origin" in ok.headers["vary"]
    error = await served.http.get("/nope", headers=origin)
    assert error.headers["access-control-allow-origin"] == "https://app.example"
    plain = await served.http.get("/metadata")
    assert "access-control-allow-origin" not in plain.headers


async def test_cors_can_be_limited_to_listed_origins(start_server: Start) -> None:
    served = await start_server(make_registry(), cors_origins=["https://good.example"])
    good = await served.http.get("/metadata", headers={"origin": "https://good.example"})
    assert good.headers["access-control-allow-origin"] == "https://good.example"
    bad = await served.http.get("/metadata", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in bad.headers
