"""Sampling and format parameters (top_p, stop, seed, penalties, response_format, user) through
the gateway: the official `openai` client against the real ASGI app, and what the fake
provider's OpenAI and Anthropic wire formats received."""

import json

import openai
import pytest
from django.test import Client

from tests.factories import FallbackChainFactory, ModelConfigFactory, TaskRouteFactory
from tests.fake_provider import Reply
from tests.gateway.test_openai_client import HELLO, client_for

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
JSON_SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
}
OPTIONS = {
    "stop": ["END", "STOP"],
    "top_p": 0.5,
    "seed": 42,
    "presence_penalty": 0.25,
    "frequency_penalty": -0.5,
    "response_format": {"type": "json_object"},
    "user": "user-1234",
}


@pytest.mark.django_db(transaction=True)
def test_the_openai_client_sends_them_and_the_openai_upstream_receives_them(live_url, api_key, fake_provider):
    fake_provider.model("alpha")
    client_for(live_url, api_key[1]).chat.completions.create(model="alpha", messages=HELLO, **OPTIONS)
    (received,) = fake_provider.requests_for("alpha")
    assert {name: received.body.get(name) for name in OPTIONS} == OPTIONS


@pytest.mark.django_db(transaction=True)
def test_a_streamed_request_carries_them_too(live_url, api_key, fake_provider):
    fake_provider.model("alpha")
    stream = client_for(live_url, api_key[1]).chat.completions.create(
        model="alpha", messages=HELLO, stream=True, stop="END", seed=3, response_format=JSON_SCHEMA_FORMAT
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    (received,) = fake_provider.requests_for("alpha")
    assert (received.stream, received.body["stop"], received.body["seed"]) == (True, ["END"], 3)
    assert received.body["response_format"] == JSON_SCHEMA_FORMAT


@pytest.mark.django_db(transaction=True)
def test_nothing_unset_is_sent_upstream(live_url, api_key, fake_provider):
    fake_provider.model("alpha")
    client_for(live_url, api_key[1]).chat.completions.create(model="alpha", messages=HELLO, stop=[])
    (received,) = fake_provider.requests_for("alpha")
    assert not set(received.body) & {*OPTIONS, "temperature"}


@pytest.mark.django_db(transaction=True)
def test_the_anthropic_upstream_receives_stop_sequences_structured_output_and_the_user(
    live_url, api_key, fake_provider
):
    fake_provider.model("claude", kind="anthropic")
    client_for(live_url, api_key[1]).chat.completions.create(
        model="claude", messages=HELLO, **{**OPTIONS, "response_format": JSON_SCHEMA_FORMAT}
    )
    (received,) = fake_provider.requests_for("claude")
    assert received.wire == "anthropic"
    assert received.body["stop_sequences"] == ["END", "STOP"]
    assert received.body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert received.body["metadata"] == {"user_id": "user-1234"}
    # The installed anthropic SDK's Messages API takes no top_p (nor temperature); seed and the
    # penalties have no Anthropic counterpart: none of them is sent.
    assert not set(received.body) & {"top_p", "seed", "presence_penalty", "frequency_penalty", "stop"}


@pytest.mark.django_db(transaction=True)
def test_the_gemini_upstream_receives_them_in_its_generation_config(live_url, api_key, fake_provider):
    fake_provider.model("gem", kind="gemini")
    client_for(live_url, api_key[1]).chat.completions.create(model="gem", messages=HELLO, **OPTIONS)
    (received,) = fake_provider.requests_for("gem")
    config = received.body["generationConfig"]
    assert (config["stopSequences"], config["topP"], config["seed"]) == (["END", "STOP"], 0.5, 42)
    assert config["responseMimeType"] == "application/json"
    # Several Gemini models answer 400 to the penalties; `user` has no counterpart.
    assert not set(config) & {"presencePenalty", "frequencyPenalty"}
    assert "user-1234" not in json.dumps(received.body)


@pytest.mark.django_db(transaction=True)
def test_json_object_on_an_anthropic_model_alone_is_a_400_naming_response_format(
    live_url, api_key, fake_provider
):
    fake_provider.model("claude", kind="anthropic")
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(live_url, api_key[1]).chat.completions.create(
            model="claude", messages=HELLO, response_format={"type": "json_object"}
        )
    error = caught.value.body
    assert error["param"] == "response_format"
    assert "json_object" in error["message"] and "claude" in error["message"]
    assert fake_provider.history == []


@pytest.mark.django_db(transaction=True)
def test_a_chain_passes_an_anthropic_model_over_for_json_object_and_the_next_one_answers(
    live_url, api_key, fake_provider
):
    FallbackChainFactory(
        name="mixed", models=[fake_provider.model("claude", kind="anthropic"), fake_provider.model("alpha")]
    )
    raw = client_for(live_url, api_key[1]).chat.completions.with_raw_response.create(
        model="chain:mixed", messages=HELLO, response_format={"type": "json_object"}, stop="END"
    )
    assert raw.parse().model == "alpha"
    assert raw.headers["x-orchestrator-attempts"] == "1"
    assert [(r.model, r.body["response_format"], r.body["stop"]) for r in fake_provider.history] == [
        ("alpha", {"type": "json_object"}, ["END"])
    ]


@pytest.mark.django_db(transaction=True)
def test_a_route_gives_its_fallback_model_the_same_options(live_url, api_key, fake_provider):
    alpha, beta = fake_provider.model("alpha"), fake_provider.model("beta")
    TaskRouteFactory(task_type="summarize", model=alpha, fallback_chain=FallbackChainFactory(models=[beta]))
    fake_provider.script("alpha", Reply.model_not_found())
    completion = client_for(live_url, api_key[1]).chat.completions.create(
        model="route:summarize", messages=HELLO, stop=["END"], seed=9, top_p=0.1, user="u"
    )
    assert completion.model == "beta"
    sent = [
        (r.model, r.body["stop"], r.body["seed"], r.body["top_p"], r.body["user"])
        for r in fake_provider.history
    ]
    assert sent == [("alpha", ["END"], 9, 0.1, "u"), ("beta", ["END"], 9, 0.1, "u")]


@pytest.mark.django_db(transaction=True)
def test_a_provider_refusing_a_parameter_is_a_400_and_no_fallback(live_url, api_key, fake_provider):
    FallbackChainFactory(name="two", models=[fake_provider.model("alpha"), fake_provider.model("beta")])
    fake_provider.script("alpha", Reply.bad_request("Unsupported parameter: 'seed'"))
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(live_url, api_key[1]).chat.completions.create(model="chain:two", messages=HELLO, seed=1)
    assert "Unsupported parameter" in caught.value.body["message"]
    assert [r.model for r in fake_provider.history] == ["alpha"]


# -- Refusals (Django's test client; nothing reaches a provider) ------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "param", "needle"),
    [
        ({"top_p": 1.5}, "top_p", "between 0 and 1"),
        ({"top_p": "high"}, "top_p", "must be a number"),
        ({"top_p": True}, "top_p", "must be a number"),
        ({"stop": 5}, "stop", "a string or an array"),
        ({"stop": ""}, "stop", "must not be empty"),
        ({"stop": ["a", ""]}, "stop[1]", "must not be empty"),
        ({"stop": ["a", 3]}, "stop[1]", "must be a string"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        ({"seed": 1.5}, "seed", "an integer"),
        ({"seed": "7"}, "seed", "an integer"),
        ({"seed": 2**64}, "seed", "64-bit"),
        ({"presence_penalty": -2.5}, "presence_penalty", "between -2 and 2"),
        ({"frequency_penalty": 3}, "frequency_penalty", "between -2 and 2"),
        ({"frequency_penalty": []}, "frequency_penalty", "must be a number"),
        ({"response_format": "json"}, "response_format", "must be an object"),
        ({"response_format": {"type": "xml"}}, "response_format.type", "must be one of"),
        ({"response_format": {}}, "response_format.type", "must be one of"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "is required"),
        (
            {"response_format": {"type": "json_schema", "json_schema": []}},
            "response_format.json_schema",
            "must be an object",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
            "response_format.json_schema.name",
            "is required",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a b"}}},
            "response_format.json_schema.name",
            "letters, digits",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": "{}"}}},
            "response_format.json_schema.schema",
            "must be an object",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "strict": "yes"}}},
            "response_format.json_schema.strict",
            "must be a boolean",
        ),
        ({"user": 12}, "user", "must be a string"),
    ],
)
def test_each_bad_value_is_a_400_naming_the_field(api_key, extra, param, needle):
    ModelConfigFactory(name="m")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    response = Client().post(
        "/v1/chat/completions",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key[1]}",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert needle in error["message"]


@pytest.mark.django_db
def test_simulated_models_honour_stop_and_json_object_through_the_gateway(api_key):
    ModelConfigFactory(name="sim")

    def answer(**extra) -> str:
        body = {"model": "sim", "messages": [{"role": "user", "content": "which way is safer?"}], **extra}
        response = Client().post(
            "/v1/chat/completions",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {api_key[1]}",
        )
        assert response.status_code == 200, response.content
        choice = response.json()["choices"][0]
        assert choice["finish_reason"] == "stop"
        return choice["message"]["content"]

    full = answer()
    assert "." in full
    assert answer(stop=["."]) == full[: full.index(".")]
    assert isinstance(json.loads(answer(response_format={"type": "json_object"})), dict)
