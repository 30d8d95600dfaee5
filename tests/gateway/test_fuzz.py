"""Fuzzed request bodies against the gateway's views: always a clear answer, never a 500."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.services import api_key_create
from tests.factories import FallbackChainFactory, ModelConfigFactory, ProviderFactory, TaskRouteFactory

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
EXPECTED = {200, 400, 403, 404, 413, 422, 429}

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
response_format = st.sampled_from(
    [
        {"type": "text"},
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}},
        {"type": "json_schema", "json_schema": {"name": "out"}},
    ]
)
sampling = {
    "top_p": st.floats(0, 1),
    "stop": st.text(min_size=1, max_size=3) | st.lists(st.text(min_size=1, max_size=3), max_size=4),
    "seed": st.integers(-(2**63), 2**63 - 1),
    "presence_penalty": st.floats(-2, 2),
    "frequency_penalty": st.floats(-2, 2),
    "response_format": response_format,
    "user": st.text(max_size=5),
}
sampling_mutated = {
    name: strategy | json_value
    for name, strategy in {
        **sampling,
        "response_format": response_format
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["json_schema", "json_object", "xml", 1])},
            optional={
                "json_schema": st.fixed_dictionaries(
                    {}, optional={"name": json_value, "schema": json_value, "strict": json_value}
                )
                | json_value
            },
        ),
    }.items()
}
content = (
    st.text(max_size=40)
    | st.lists(
        st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", 3]), "text": json_value}),
        max_size=3,
    )
    | json_value
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "developer", "tool", "robot", 1, None])},
    optional={"content": content, "name": json_value},
)
valid_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "system", "assistant", "developer"]),
        "content": st.text(min_size=1, max_size=30)
        | st.lists(
            st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=10)}), max_size=2
        ),
    }
)
valid_body = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["sim", "route:fuzz", "chain:fuzz", "nope", "route:nope", "chain:nope"]),
        "messages": st.lists(valid_message, min_size=1, max_size=3).map(
            lambda ms: [*ms, {"role": "user", "content": "go"}]
        ),
    },
    optional={
        "temperature": st.floats(0, 2),
        "max_tokens": st.integers(1, 100),
        "stream": st.booleans(),
        **sampling,
    },
)
mutated_body = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["sim", "route:fuzz", "chain:fuzz", "nope", "route:", "", 5, None])
        | json_value,
        "messages": st.lists(message, max_size=4) | json_value,
        "temperature": st.floats() | st.integers() | json_value,
        "max_tokens": st.integers() | json_value,
        "stream": st.booleans() | json_value,
        "stream_options": st.fixed_dictionaries({"include_usage": json_value}) | json_value,
        "n": st.integers(-1, 3),
        "tools": json_value,
        **sampling_mutated,
    },
)


@pytest.fixture
def gateway_setup(db):
    model = ModelConfigFactory(name="sim")
    # Passed over, with no call: its key variable is unset, and it cannot do json_object.
    claude = ModelConfigFactory(
        name="claude",
        provider=ProviderFactory(name="anthropic", kind="anthropic", api_key_env="FUZZ_UNSET_KEY"),
    )
    TaskRouteFactory(task_type="fuzz", model=model)
    FallbackChainFactory(name="fuzz", models=[claude, model])
    _, raw = api_key_create(name="fuzzer")
    return Client(), {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


async def _collect(chunks) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def check(response) -> None:
    assert response.status_code in EXPECTED, response.content[:300]
    if response.status_code >= 400:
        error = json.loads(response.content)["error"]
        assert error["message"] and error["type"] and "code" in error
    elif response.streaming:
        text = async_to_sync(_collect)(response.streaming_content).decode()
        assert text.startswith("data: ")
    else:
        assert json.loads(response.content)["object"] == "chat.completion"


@FUZZ
@given(body=valid_body | mutated_body)
def test_structured_bodies_never_cause_a_500(gateway_setup, body):
    client, auth = gateway_setup
    check(client.post("/v1/chat/completions", data=json.dumps(body), content_type="application/json", **auth))


@FUZZ
@given(raw=st.binary(max_size=200) | json_value.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_never_cause_a_500(gateway_setup, raw):
    client, auth = gateway_setup
    check(client.post("/v1/chat/completions", data=raw, content_type="application/json", **auth))


@FUZZ
@given(
    path=st.sampled_from(["/api/v1/route/fuzz", "/api/v1/consensus", "/api/v1/parallel"]),
    body=json_value
    | st.fixed_dictionaries(
        {},
        optional={
            "content": json_value,
            "models": st.lists(st.sampled_from(["sim", "nope", ""]), max_size=3) | json_value,
            "aggregator": st.sampled_from(["majority", "judge", "fastest", "x"]),
            "tasks": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "task_type": st.sampled_from(["fuzz", "nope"]),
                        "model": st.sampled_from(["sim", "nope"]),
                        "content": json_value,
                    },
                ),
                max_size=3,
            ),
            "temperature": json_value,
            **sampling_mutated,
        },
    ),
)
def test_native_endpoints_never_cause_a_500(gateway_setup, path, body):
    client, auth = gateway_setup
    response = client.post(path, data=json.dumps(body), content_type="application/json", **auth)
    assert response.status_code in EXPECTED, response.content[:300]
    if response.status_code >= 400:
        assert json.loads(response.content)["error"]["message"]
