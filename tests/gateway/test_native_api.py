"""The native API (/api/v1/) with models on the fake provider, through Django's test client."""

from decimal import Decimal

import pytest

from gateway.api.endpoints import CONSENSUS, PARALLEL, ROUTE
from gateway.routes import ROUTES
from metrics.models import CallRecord, Endpoint
from tests.factories import TaskRouteFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def models(fake_provider):
    price = {"input_cost_per_1k": Decimal("1"), "output_cost_per_1k": Decimal("2")}
    return fake_provider.model("alpha", **price), fake_provider.model("beta", **price)


def call(client, path, body, raw):
    return client.post(path, data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_a_route_returns_output_model_trace_cost_and_attempts(client, models, api_key):
    TaskRouteFactory(task_type="summarize", model=models[0])
    response = call(
        client, "/api/v1/route/summarize", {"content": "three little words", "max_tokens": 20}, api_key[1]
    )
    assert response.status_code == 200
    payload = response.json()
    assert payload["output"] == "Echo: three little words"
    assert payload["model"] == "alpha"
    assert Decimal(payload["cost_usd"]) == Decimal("0.011")
    assert [a["model"] for a in payload["attempts"]] == ["alpha"]
    assert response["x-orchestrator-trace-id"] == payload["trace_id"]
    record = CallRecord.objects.get(trace_id=payload["trace_id"])
    assert (record.api_key_id, record.task_type) == (api_key[0].pk, "summarize")


def test_an_unknown_route_is_404_in_openai_shape(client, models, api_key):
    response = call(client, "/api/v1/route/nope", {"content": "x"}, api_key[1])
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_a_route_the_key_may_not_use_is_403(client, models, make_key):
    TaskRouteFactory(task_type="summarize", model=models[0])
    _, raw = make_key("narrow", allowed=["route:other"])
    assert call(client, "/api/v1/route/summarize", {"content": "x"}, raw).status_code == 403


def test_consensus_asks_every_model(client, models, api_key, fake_provider):
    response = call(
        client, "/api/v1/consensus", {"content": "same answer", "models": ["alpha", "beta"]}, api_key[1]
    )
    assert response.status_code == 200
    payload = response.json()
    assert payload["output"] == "Echo: same answer"
    assert sorted(m["model"] for m in payload["members"]) == ["alpha", "beta"]
    assert payload["aggregator"] == "majority"
    assert len(fake_provider.history) == 2
    assert set(CallRecord.objects.values_list("api_key_id", flat=True)) == {api_key[0].pk}


def test_consensus_with_an_unknown_aggregator_is_400(client, models, api_key):
    response = call(
        client, "/api/v1/consensus", {"content": "x", "models": ["alpha"], "aggregator": "dice"}, api_key[1]
    )
    assert response.status_code == 400
    assert "aggregator" in response.json()["error"]["message"]


def test_parallel_returns_one_result_or_error_per_task_in_order(client, models, api_key, fake_provider):
    TaskRouteFactory(task_type="summarize", model=models[1])
    fake_provider.script("alpha", *[Reply.model_not_found()] * 3)
    tasks = [
        {"task_type": "summarize", "content": "one"},
        {"model": "beta", "content": "two"},
        {"model": "alpha", "messages": [{"role": "user", "content": "three"}]},
        {"model": "nope", "content": "four"},
    ]
    response = call(client, "/api/v1/parallel", {"tasks": tasks, "concurrency": 2}, api_key[1])
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, True, False, False]
    assert results[0]["result"]["output"] == "Echo: one"
    assert results[1]["result"]["model"] == "beta"
    assert results[3]["error"]["status"] == 404


def test_each_native_endpoint_names_itself_on_its_records(client, models, api_key, fake_provider):
    TaskRouteFactory(task_type="summarize", model=models[0])
    routed = call(client, "/api/v1/route/summarize", {"content": "one"}, api_key[1]).json()
    voted = call(client, "/api/v1/consensus", {"content": "two", "models": ["alpha", "beta"]}, api_key[1])
    ran = call(client, "/api/v1/parallel", {"tasks": [{"model": "beta", "content": "three"}]}, api_key[1])
    assert voted.status_code == ran.status_code == 200
    parallel_trace = ran.json()["results"][0]["result"]["trace_id"]

    def endpoints(trace_id):
        return set(CallRecord.objects.filter(trace_id=trace_id).values_list("endpoint", flat=True))

    assert endpoints(routed["trace_id"]) == {"api.route"}
    assert endpoints(voted.json()["trace_id"]) == {"api.consensus"}
    assert endpoints(parallel_trace) == {"api.parallel"}
    assert CallRecord.objects.filter(endpoint="").count() == 0


def test_every_endpoint_that_calls_the_engine_has_a_name_the_dashboard_labels():
    adapters = [route.endpoint for route in ROUTES if route.endpoint.admits] + [ROUTE, CONSENSUS, PARALLEL]
    names = {adapter.endpoint for adapter in adapters}
    assert "" not in names
    assert names <= set(Endpoint.values), (
        f"add {sorted(names - set(Endpoint.values))} to metrics.enums.Endpoint"
    )
    assert all(len(name) <= 32 for name in names)  # CallRecord.endpoint's max_length


def test_parallel_refuses_a_task_naming_two_targets(client, models, api_key):
    response = call(
        client, "/api/v1/parallel", {"tasks": [{"model": "alpha", "chain": "x", "content": "y"}]}, api_key[1]
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tasks[0]"


def test_the_native_api_shares_the_keys_rate_limit(client, models, make_key):
    TaskRouteFactory(task_type="summarize", model=models[0])
    _, raw = make_key("slow", rpm=1)
    assert call(client, "/api/v1/route/summarize", {"content": "x"}, raw).status_code == 200
    response = call(client, "/api/v1/route/summarize", {"content": "x"}, raw)
    assert response.status_code == 429
    assert response["retry-after"]


def test_a_route_passes_the_sampling_options_to_the_provider(client, models, api_key, fake_provider):
    TaskRouteFactory(task_type="summarize", model=models[0])
    body = {
        "content": "three little words",
        "stop": ["END"],
        "top_p": 0.5,
        "seed": 11,
        "frequency_penalty": 0.5,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": {"type": "object"}},
        },
        "user": "u-7",
    }
    assert call(client, "/api/v1/route/summarize", body, api_key[1]).status_code == 200
    (received,) = fake_provider.requests_for("alpha")
    assert {k: received.body.get(k) for k in body if k != "content"} == {
        k: v for k, v in body.items() if k != "content"
    }


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"top_p": 3}, "top_p"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": [""]}, "stop[0]"),
        ({"seed": "x"}, "seed"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": 1}}},
            "response_format.json_schema.name",
        ),
    ],
)
def test_a_route_names_a_bad_sampling_option(client, models, api_key, fake_provider, extra, param):
    TaskRouteFactory(task_type="summarize", model=models[0])
    response = call(client, "/api/v1/route/summarize", {"content": "x", **extra}, api_key[1])
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert fake_provider.history == []


def test_the_openapi_schema_shows_the_sampling_options(staff_client):
    schema = staff_client.get("/api/v1/openapi.json").json()
    route_in = schema["components"]["schemas"]["RouteIn"]["properties"]
    assert {
        "top_p",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "response_format",
        "user",
    } <= set(route_in)
    formats = schema["components"]["schemas"]["ResponseFormat"]["properties"]
    assert formats["type"]["enum"] == ["text", "json_object", "json_schema"]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/api/v1/route/summarize", '{"content": "a\\udfffb"}', "content"),
        (
            "/api/v1/consensus",
            '{"messages": [{"role": "user", "content": "x\\ud800y"}], "models": ["alpha"]}',
            "messages[0].content",
        ),
        (
            "/api/v1/parallel",
            '{"tasks": [{"model": "alpha", "content": "ok"}, {"model": "beta", "content": "\\ud800"}]}',
            "tasks[1].content",
        ),
    ],
)
def test_a_lone_surrogate_is_400_naming_the_field(client, models, api_key, fake_provider, path, body, param):
    TaskRouteFactory(task_type="summarize", model=models[0])
    response = client.post(
        path, data=body.encode(), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key[1]}"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, "invalid_encoding")
    assert param in error["message"]
    assert fake_provider.history == [] and not CallRecord.objects.exists()


def _required_sets(branches):
    """The `required` lists of each branch (an allOf's parts merged), as sets."""
    out = []
    for branch in branches:
        parts = branch.get("allOf", [branch])
        out.append(set().union(*(p.get("required", []) for p in parts)))
    return out


def test_the_openapi_schema_says_consensus_needs_messages_or_content(staff_client):
    consensus_in = staff_client.get("/api/v1/openapi.json").json()["components"]["schemas"]["ConsensusIn"]
    assert _required_sets(consensus_in["anyOf"]) == [{"messages"}, {"content"}]
    messages, content = consensus_in["anyOf"]
    assert messages["properties"]["messages"]["minItems"] == 1
    assert content["properties"]["content"]["minLength"] == 1


def test_the_openapi_schema_says_a_task_names_exactly_one_target(staff_client):
    task_in = staff_client.get("/api/v1/openapi.json").json()["components"]["schemas"]["TaskIn"]
    route, model, chain = task_in["oneOf"]
    assert _required_sets([route]) == [{"task_type", "content"}]
    for branch, target in ((model, "model"), (chain, "chain")):
        named, given = branch["allOf"]
        assert named["required"] == [target] and named["properties"][target]["type"] == "string"
        assert _required_sets(given["anyOf"]) == [{"messages"}, {"content"}]


def test_the_openapi_schema_says_json_schema_goes_with_its_type(staff_client):
    response_format = staff_client.get("/api/v1/openapi.json").json()["components"]["schemas"][
        "ResponseFormat"
    ]
    assert response_format["if"]["properties"]["type"] == {"const": "json_schema"}
    assert response_format["then"]["required"] == ["json_schema"]
    assert "json_schema" in response_format["properties"]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/api/v1/consensus", {"models": ["alpha"]}, "messages"),
        ("/api/v1/consensus", {"models": ["alpha"], "messages": []}, "messages"),
        ("/api/v1/parallel", {"tasks": [{"model": "alpha", "chain": "c", "content": "x"}]}, "tasks[0]"),
        ("/api/v1/parallel", {"tasks": [{"content": "x"}]}, "tasks[0]"),
        ("/api/v1/parallel", {"tasks": [{"task_type": "summarize"}]}, "tasks[0].content"),
        ("/api/v1/parallel", {"tasks": [{"model": "alpha"}]}, "tasks[0].messages"),
        (
            "/api/v1/route/summarize",
            {"content": "x", "response_format": {"type": "json_schema"}},
            "response_format.json_schema",
        ),
    ],
)
def test_the_schema_rules_are_400s_at_run_time(client, models, api_key, fake_provider, path, body, param):
    TaskRouteFactory(task_type="summarize", model=models[0])
    response = call(client, path, body, api_key[1])
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert fake_provider.history == []


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_a_temperature_that_is_not_finite_gets_a_clear_400(client, models, api_key, fake_provider, number):
    TaskRouteFactory(task_type="summarize", model=models[0])
    body = f'{{"content": "x", "temperature": {number}}}'
    response = client.post(
        "/api/v1/route/summarize",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key[1]}",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "temperature"
    assert error["message"] == "temperature: Input should be a finite number"
    assert fake_provider.history == []


def test_parallel_tasks_take_whole_conversations_with_images_and_tool_turns(client, api_key, fake_provider):
    fake_provider.model("seer", capabilities=["vision", "tool_use"])
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    conversation = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "what is it"}, image]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
    ]
    response = call(
        client, "/api/v1/parallel", {"tasks": [{"model": "seer", "messages": conversation}]}, api_key[1]
    )
    assert response.status_code == 200 and response.json()["results"][0]["ok"]
    (received,) = fake_provider.requests_for("seer")
    sent = received.body["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[1]["content"][1] == image
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]},
            "tasks[0].messages[0].content[0].image_url.url",
        ),
        ({"role": "tool", "tool_call_id": "call_7", "content": "42"}, "tasks[0].messages[0].tool_call_id"),
        (
            {"role": "user", "content": [{"type": "video", "video": {}}]},
            "tasks[0].messages[0].content[0].type",
        ),
    ],
)
def test_a_bad_message_in_a_task_is_400_naming_the_field(
    client, models, api_key, fake_provider, message, param
):
    response = call(
        client, "/api/v1/parallel", {"tasks": [{"model": "alpha", "messages": [message]}]}, api_key[1]
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert fake_provider.history == []


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/route", "/api/v1/consensus/extra"])
def test_an_unknown_path_is_a_json_404(client, api_key, path):
    response = call(client, path, {}, api_key[1])
    assert (response.status_code, response["content-type"]) == (404, "application/json")
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("not_found_error", "unknown_url")


def test_a_wrong_method_is_a_json_405(client, api_key):
    response = client.get("/api/v1/consensus", HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    assert (response.status_code, response["content-type"]) == (405, "application/json")
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response["allow"] == "POST"
