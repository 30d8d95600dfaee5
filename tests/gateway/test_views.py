"""The /v1/ endpoints' refusals through Django's test client (no provider call involved)."""

import json

import pytest
from django.test import Client

from tests.factories import FallbackChainFactory, ModelConfigFactory, TaskRouteFactory
from tests.gateway.conftest import bearer

pytestmark = pytest.mark.django_db

URL = "/v1/chat/completions"
GOOD = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def post(client: Client, body, raw: str | None, **extra):
    data = body if isinstance(body, bytes) else json.dumps(body)
    headers: dict = bearer(raw) if raw else {}
    return client.post(URL, data=data, content_type="application/json", **headers, **extra)


def error_of(response) -> dict:
    payload = response.json()
    assert set(payload["error"]) >= {"message", "type", "param", "code"}
    return payload["error"]


def test_it_refuses_a_request_without_a_key(client):
    response = post(client, GOOD, None)
    assert response.status_code == 401
    assert error_of(response)["type"] == "authentication_error"


def test_it_refuses_an_unknown_key(client):
    response = post(client, GOOD, "ork-" + "z" * 43)
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_api_key"


def test_it_refuses_a_basic_auth_header(client, api_key):
    response = client.post(
        URL, data=json.dumps(GOOD), content_type="application/json", HTTP_AUTHORIZATION="Basic abc"
    )
    assert response.status_code == 401


def test_it_refuses_a_revoked_key(client, api_key):
    from gateway.services import api_key_revoke

    key, raw = api_key
    api_key_revoke(key=key)
    response = post(client, GOOD, raw)
    assert response.status_code == 401
    assert "revoked" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"\xff\xfe{}", None, "not valid UTF-8"),
        (b"", None, "empty"),
        (b"[1, 2]", None, "must be a JSON object"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model", "model is required"),
        ({"model": 7, "messages": []}, "model", "must be a string"),
        ({"model": "m"}, "messages", "messages is required"),
        ({"model": "m", "messages": "hi"}, "messages", "must be an array"),
        ({"model": "m", "messages": []}, "messages", "at least one"),
        (
            {"model": "m", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
            "must be one of",
        ),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role", "must be one of"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content", "required"),
        (
            {"model": "m", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
            "must be a string",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            },
            "messages[0].content[0].image_url.url",
            "non-empty string",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
            },
            "messages[0].content[0].type",
            "'input_audio' is not supported",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "tool_call_id": "call_9", "content": "x"}]},
            "messages[0].tool_call_id",
            "answers no tool call",
        ),
        ({**GOOD, "temperature": "hot"}, "temperature", "must be a number"),
        ({**GOOD, "temperature": 3}, "temperature", "between 0 and 2"),
        ({**GOOD, "max_tokens": 1.5}, "max_tokens", "integer"),
        ({**GOOD, "max_tokens": 0}, "max_tokens", "positive"),
        ({**GOOD, "stream": "yes"}, "stream", "boolean"),
        ({**GOOD, "stream_options": {"include_usage": True}}, "stream_options", "only allowed when stream"),
        ({**GOOD, "n": 9}, "n", "between 1 and 8"),
        ({**GOOD, "n": 2, "stream": True}, "n", "cannot be streamed"),
        ({**GOOD, "tools": [{"type": "function"}]}, "tools[0].function", "must be an object"),
        ({**GOOD, "functions": [{"name": "f"}]}, "functions", "send tools instead"),
        ({"model": "route:", "messages": GOOD["messages"]}, "model", "route:<task_type>"),
        ({"model": "route:x", "messages": [{"role": "system", "content": "x"}]}, "messages", "user message"),
    ],
)
def test_it_names_what_is_wrong_with_a_bad_body(client, api_key, body, param, needle):
    response = post(client, body, api_key[1])
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert needle in error["message"]


def test_it_refuses_a_body_over_the_limit_with_413(client, api_key, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "GATEWAY_MAX_BODY_BYTES": 1000}
    body = {**GOOD, "messages": [{"role": "user", "content": "x" * 2000}]}
    response = post(client, body, api_key[1])
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"


def test_it_refuses_a_target_the_key_may_not_use(client, make_key):
    _, raw = make_key("narrow", allowed=["route:code_review"])
    response = post(client, {**GOOD, "model": "gpt-4o"}, raw)
    assert response.status_code == 403
    error = error_of(response)
    assert (error["type"], error["param"]) == ("permission_error", "model")
    assert "route:code_review" in error["message"]


def test_it_answers_wrong_methods_with_405(client, api_key):
    assert client.get(URL, **bearer(api_key[1])).status_code == 405
    response = client.post("/v1/models", **bearer(api_key[1]))
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert response["allow"] == "GET"


@pytest.mark.parametrize("path", ["/v1/audio/speech", "/v1/chat/completion", "/v1", "/v1/"])
def test_an_unknown_v1_path_is_a_json_404_in_openais_shape(client, api_key, path):
    response = client.post(path, data="{}", content_type="application/json", **bearer(api_key[1]))
    assert response.status_code == 404
    assert response["content-type"] == "application/json"
    error = error_of(response)
    assert (error["type"], error["code"]) == ("not_found_error", "unknown_url")
    assert f"POST {path}" in error["message"] and "POST /v1/chat/completions" in error["message"]


def test_a_trailing_slash_reaches_the_route_as_it_does_through_the_asgi_front(client, api_key):
    assert client.get("/v1/models/", **bearer(api_key[1])).status_code == 200
    assert error_of(client.get(URL + "/", **bearer(api_key[1])))["code"] == "method_not_allowed"


def test_it_needs_no_session_or_csrf_token(api_key):
    csrf_client = Client(enforce_csrf_checks=True)
    response = post(csrf_client, {**GOOD, "n": "three"}, api_key[1])
    assert response.status_code == 400  # reached the handler: not a login redirect or a CSRF 403


def test_it_lists_models_routes_and_chains(client, api_key):
    ModelConfigFactory(name="fast-model")
    ModelConfigFactory(name="off-model", enabled=False)
    TaskRouteFactory(task_type="code_review")
    FallbackChainFactory(name="default")
    response = client.get("/v1/models", **bearer(api_key[1]))
    assert response.status_code == 200
    payload = response.json()
    assert payload["object"] == "list"
    ids = [m["id"] for m in payload["data"]]
    assert ids == ["fast-model", "route:code_review", "chain:default"]
    assert all(m["object"] == "model" for m in payload["data"])


def test_the_model_list_shows_only_what_the_key_may_use(client, make_key):
    ModelConfigFactory(name="fast-model")
    TaskRouteFactory(task_type="code_review")
    _, raw = make_key("narrow", allowed=["route:*"])
    ids = [m["id"] for m in client.get("/v1/models", **bearer(raw)).json()["data"]]
    assert ids == ["route:code_review"]


def test_the_model_list_needs_a_key(client):
    assert client.get("/v1/models").status_code == 401


def test_the_django_view_streams_too(api_key, fake_provider):
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    fake_provider.model("alpha")
    body = {"model": "alpha", "messages": [{"role": "user", "content": "a b"}], "stream": True}

    async def stream() -> tuple[int, str, bytes]:
        response = await AsyncClient().post(
            URL, data=body, content_type="application/json", headers={"authorization": f"Bearer {api_key[1]}"}
        )
        chunks = response.streaming_content  # type: ignore[attr-defined]
        return response.status_code, response["content-type"], b"".join([c async for c in chunks])

    status, content_type, raw = async_to_sync(stream)()
    assert (status, content_type) == (200, "text/event-stream")
    events = raw.decode().split("\n\n")
    assert events[-2] == "data: [DONE]"
    contents = [json.loads(e[6:])["choices"][0]["delta"].get("content", "") for e in events[:-2] if e]
    assert "".join(contents) == "Echo: a b"


def test_a_stream_through_the_django_view_settles_its_reservation_once_sent(make_key, fake_provider, client):
    """The key's first request reserves all of its tokens per minute: had the stream not
    settled once Django sent it, the next request would be refused."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    fake_provider.model("alpha")
    _, raw = make_key("ci", tpm=1_000)
    body = {"model": "alpha", "messages": [{"role": "user", "content": "a b"}], "stream": True}

    async def stream() -> bytes:
        response = await AsyncClient().post(
            URL, data=body, content_type="application/json", headers={"authorization": f"Bearer {raw}"}
        )
        return b"".join([c async for c in response.streaming_content])  # type: ignore[attr-defined]

    assert async_to_sync(stream)().endswith(b"data: [DONE]\n\n")
    assert post(client, GOOD | {"model": "alpha"}, raw).status_code == 200


def test_a_bearer_request_reads_the_database_once_per_key_then_not_at_all(
    client, make_key, django_assert_num_queries
):
    _, raw = make_key("narrow", allowed=["route:x"])
    with django_assert_num_queries(2):  # the key lookup and its last-used time (no session, no user)
        assert post(client, GOOD, raw).status_code == 403
    with django_assert_num_queries(0):  # cached: nothing until the cache interval passes
        for _ in range(5):
            assert post(client, GOOD, raw).status_code == 403


def test_a_model_outside_the_allow_list_cannot_be_retrieved(client, make_key):
    ModelConfigFactory(name="fast-model")
    _, raw = make_key("narrow", allowed=["route:*"])
    assert client.get("/v1/models/fast-model", **bearer(raw)).status_code == 404
    _, open_raw = make_key("open")
    assert client.get("/v1/models/fast-model", **bearer(open_raw)).json()["id"] == "fast-model"


@pytest.mark.parametrize(
    ("number", "shown"), [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")]
)
@pytest.mark.parametrize("field", ["temperature", "top_p"])
def test_a_number_that_is_not_finite_is_named_as_such(client, api_key, number, shown, field):
    body = f'{{"model": "alpha", "messages": [{{"role": "user", "content": "x"}}], "{field}": {number}}}'
    response = post(client, body.encode(), api_key[1])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field
    assert error["message"] == f"{field} must be a finite number, not {shown}."
