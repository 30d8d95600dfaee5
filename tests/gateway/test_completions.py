"""POST /v1/completions (legacy) through the official `openai` client against the live gateway
(uvicorn), the models answered by the fake provider server on loopback (and the simulated kind
of the shipped defaults)."""

from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
from django.conf import settings

from gateway.services import api_key_create
from metrics.models import CallRecord
from routing.config_io import config_import
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)

PRICE = {"input_cost_per_1k": Decimal("1"), "output_cost_per_1k": Decimal("2")}
PROVIDER_KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "GEMINI_API_KEY")


@pytest.fixture
def alpha(fake_provider):
    """A chat model on the fake provider (OpenAI wire), $1 / $2 per 1K input / output tokens."""
    return fake_provider.model("alpha", **PRICE)


@pytest.fixture
def key():
    return api_key_create(name="app")


def client_for(live_url: str, raw: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw, max_retries=0, timeout=20)


def records(**filters):
    return list(CallRecord.objects.filter(**filters).order_by("id"))


def post(live_url: str, raw: str, body: dict) -> httpx.Response:
    return httpx.post(f"{live_url}/v1/completions", headers={"authorization": f"Bearer {raw}"}, json=body)


def test_a_prompt_is_answered_as_a_text_completion_through_chat(live_url, alpha, key, fake_provider):
    raw = client_for(live_url, key[1]).completions.with_raw_response.create(
        model="alpha", prompt="three little words"
    )
    answer = raw.parse()

    assert answer.object == "text_completion" and answer.id.startswith("cmpl-")
    assert answer.model == "alpha"
    (choice,) = answer.choices
    assert (choice.text, choice.index, choice.finish_reason, choice.logprobs) == (
        "Echo: three little words",
        0,
        "stop",
        None,
    )
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (
        3,
        4,
        7,
    )
    (sent,) = fake_provider.requests_for("alpha")
    assert sent.body["messages"] == [{"role": "user", "content": "three little words"}]
    assert sent.body["max_completion_tokens"] == 16  # OpenAI's default for this endpoint
    trace = raw.headers["x-orchestrator-trace-id"]
    assert answer.id == f"cmpl-{trace}"
    assert Decimal(raw.headers["x-orchestrator-cost-usd"]) == Decimal("0.011")
    (record,) = records(trace_id=trace)
    assert (record.endpoint, record.source, record.api_key_id, record.status) == (
        "completions",
        "gateway",
        key[0].pk,
        "ok",
    )


def test_the_sampling_fields_reach_the_provider(live_url, alpha, key, fake_provider):
    client_for(live_url, key[1]).completions.create(
        model="alpha",
        prompt="hi",
        max_tokens=40,
        temperature=0.5,
        top_p=0.9,
        stop=["\n"],
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        user="u-1",
        best_of=1,
    )
    (sent,) = fake_provider.requests_for("alpha")
    body = sent.body
    assert (body["max_completion_tokens"], body["temperature"], body["top_p"], body["stop"]) == (
        40,
        0.5,
        0.9,
        ["\n"],
    )
    assert (body["seed"], body["presence_penalty"], body["frequency_penalty"], body["user"]) == (
        7,
        0.1,
        0.2,
        "u-1",
    )


def test_a_list_of_prompts_gets_one_choice_each_in_order_in_one_trace(live_url, alpha, key):
    raw = client_for(live_url, key[1]).completions.with_raw_response.create(
        model="alpha", prompt=["first one", "the second one", "third"]
    )
    answer = raw.parse()

    assert [(c.index, c.text) for c in answer.choices] == [
        (0, "Echo: first one"),
        (1, "Echo: the second one"),
        (2, "Echo: third"),
    ]
    assert answer.usage.prompt_tokens == 2 + 3 + 1
    trace = raw.headers["x-orchestrator-trace-id"]
    assert raw.headers["x-orchestrator-attempts"] == "3"
    assert Decimal(raw.headers["x-orchestrator-cost-usd"]) == sum(r.cost_usd for r in records(trace_id=trace))
    assert [r.endpoint for r in records(trace_id=trace)] == ["completions"] * 3


def test_n_choices_for_each_prompt_are_numbered_prompt_by_prompt(live_url, alpha, key, fake_provider):
    answer = client_for(live_url, key[1]).completions.create(
        model="alpha", prompt=["one", "two"], n=2, best_of=2
    )
    assert [(c.index, c.text) for c in answer.choices] == [
        (0, "Echo: one"),
        (1, "Echo: one"),
        (2, "Echo: two"),
        (3, "Echo: two"),
    ]
    assert sorted(r.body["n"] for r in fake_provider.requests_for("alpha")) == [2, 2]


def test_echo_puts_the_prompt_before_the_text(live_url, alpha, key):
    answer = client_for(live_url, key[1]).completions.create(model="alpha", prompt="Say: ", echo=True)
    assert answer.choices[0].text == "Say: Echo: Say:"


def test_logprobs_come_back_in_the_legacy_shape(live_url, alpha, key, fake_provider):
    answer = client_for(live_url, key[1]).completions.create(model="alpha", prompt="two words", logprobs=2)

    logprobs = answer.choices[0].logprobs
    assert logprobs.tokens == ["Echo:", " two", " words"]
    assert len(logprobs.token_logprobs) == len(logprobs.tokens) == len(logprobs.top_logprobs)
    assert all(len(top) == 2 for top in logprobs.top_logprobs)
    assert logprobs.top_logprobs[0][logprobs.tokens[0]] == logprobs.token_logprobs[0]
    assert logprobs.text_offset == [0, 5, 9]
    (sent,) = fake_provider.requests_for("alpha")
    assert (sent.body["logprobs"], sent.body["top_logprobs"]) == (True, 2)


def test_logprobs_from_a_model_that_cannot_give_them_are_a_400_naming_logprobs(live_url, key, fake_provider):
    fake_provider.model("claude", kind="anthropic")
    with pytest.raises(openai.BadRequestError) as error:
        client_for(live_url, key[1]).completions.create(model="claude", prompt="hi", logprobs=1)
    assert error.value.body["param"] == "logprobs"
    assert not fake_provider.requests_for("claude")


def test_a_stream_sends_text_completion_chunks_then_usage_then_done(live_url, alpha, key):
    chunks = list(
        client_for(live_url, key[1]).completions.create(
            model="alpha", prompt="stream these words", stream=True, stream_options={"include_usage": True}
        )
    )

    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == "Echo: stream these words"
    assert all(c.object == "text_completion" for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 3
    (record,) = records(trace_id=chunks[0].id.removeprefix("cmpl-"))
    assert (record.endpoint, record.stream, record.status) == ("completions", True, "ok")


def test_a_streamed_echo_starts_with_the_prompt_and_ends_with_done(live_url, alpha, key):
    response = httpx.post(
        f"{live_url}/v1/completions",
        headers={"authorization": f"Bearer {key[1]}"},
        json={"model": "alpha", "prompt": "Go: ", "echo": True, "stream": True},
    )
    events = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert '"text":"Go: "' in events[0]
    assert not any('"usage"' in e for e in events)  # not asked for


def test_a_stream_that_fails_after_its_first_words_ends_with_an_error_the_sdk_raises(
    live_url, alpha, key, fake_provider
):
    fake_provider.script("alpha", Reply.stream_error(after_tokens=2, text="one two three four"))
    texts = []
    with pytest.raises(openai.APIError):
        for chunk in client_for(live_url, key[1]).completions.create(model="alpha", prompt="hi", stream=True):
            texts.append(chunk.choices[0].text)
    assert "".join(texts) == "one two"
    (record,) = records()
    assert (record.endpoint, record.status) == ("completions", "error")


def test_a_chain_falls_over_inside_the_endpoint(live_url, key, fake_provider):
    first, second = fake_provider.model("first"), fake_provider.model("second")
    FallbackChainFactory(name="steady", models=[first, second])
    fake_provider.script("first", Reply.unauthorized())

    raw = client_for(live_url, key[1]).completions.with_raw_response.create(model="chain:steady", prompt="hi")

    assert raw.parse().model == "second"
    assert raw.headers["x-orchestrator-attempts"] == "2"
    statuses = [
        (r.model_name, r.status, r.endpoint) for r in records(trace_id=raw.headers["x-orchestrator-trace-id"])
    ]
    assert statuses == [("first", "error", "completions"), ("second", "ok", "completions")]


def test_a_route_answers_with_its_prompt_and_model(live_url, alpha, key, fake_provider):
    TaskRouteFactory(task_type="summarize", model=alpha)
    answer = client_for(live_url, key[1]).completions.create(model="route:summarize", prompt="a long text")
    assert answer.model == "alpha"
    assert fake_provider.requests_for("alpha")[0].body["messages"][-1] == {
        "role": "user",
        "content": "a long text",
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "hi"}, "model"),
        ({"model": "alpha"}, "prompt"),
        ({"model": "alpha", "prompt": 5}, "prompt"),
        ({"model": "alpha", "prompt": []}, "prompt"),
        ({"model": "alpha", "prompt": [1, 2, 3]}, "prompt"),
        ({"model": "alpha", "prompt": [[1, 2], [3]]}, "prompt"),
        ({"model": "alpha", "prompt": ["a", None]}, "prompt[1]"),
        ({"model": "alpha", "prompt": ["a"] * 33}, "prompt"),
        ({"model": "alpha", "prompt": "hi", "suffix": "end"}, "suffix"),
        ({"model": "alpha", "prompt": "hi", "best_of": 3}, "best_of"),
        ({"model": "alpha", "prompt": "hi", "best_of": "2"}, "best_of"),
        ({"model": "alpha", "prompt": "hi", "echo": "yes"}, "echo"),
        ({"model": "alpha", "prompt": "hi", "logprobs": 6}, "logprobs"),
        ({"model": "alpha", "prompt": "hi", "logprobs": True}, "logprobs"),
        ({"model": "alpha", "prompt": "hi", "logprobs": 1, "echo": True}, "logprobs"),
        ({"model": "alpha", "prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"model": "alpha", "prompt": "hi", "temperature": 3}, "temperature"),
        ({"model": "alpha", "prompt": "hi", "stop": [1]}, "stop[0]"),
        ({"model": "alpha", "prompt": "hi", "n": 0}, "n"),
        ({"model": "alpha", "prompt": ["a", "b"], "stream": True}, "prompt"),
        ({"model": "alpha", "prompt": "hi", "stream": True, "n": 2}, "n"),
        ({"model": "alpha", "prompt": "hi", "stream_options": {"include_usage": True}}, "stream_options"),
    ],
)
def test_bad_input_is_a_400_in_openais_shape_naming_the_field(live_url, alpha, key, body, param):
    response = post(live_url, key[1], body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert not records()


def test_a_body_that_is_not_an_object_is_a_400(live_url, alpha, key):
    response = post(live_url, key[1], ["model", "alpha"])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_type"


def test_an_unknown_model_is_a_404_naming_the_model(live_url, key):
    with pytest.raises(openai.NotFoundError) as error:
        client_for(live_url, key[1]).completions.create(model="nope", prompt="hi")
    assert error.value.body["param"] == "model"


def test_the_rate_limit_applies(live_url, alpha):
    _, raw = api_key_create(name="slow", rpm=1)
    client = client_for(live_url, raw)
    client.completions.create(model="alpha", prompt="hi")
    with pytest.raises(openai.RateLimitError) as error:
        client.completions.create(model="alpha", prompt="hi")
    assert error.value.body["code"] == "rate_limit_exceeded"


def test_an_exhausted_budget_is_429(live_url, alpha):
    key, raw = api_key_create(name="tight", budget_usd=Decimal("0.01"), budget_period="day")
    client = client_for(live_url, raw)
    client.completions.create(model="alpha", prompt="three little words")  # $0.011
    with pytest.raises(openai.RateLimitError) as error:
        client.completions.create(model="alpha", prompt="hi")
    assert error.value.body["code"] == "budget_exceeded"
    assert sum(r.cost_usd for r in records(api_key=key)) == Decimal("0.011")


def test_a_list_whose_one_prompt_fails_still_counts_what_the_others_spent(live_url, alpha, fake_provider):
    key, raw = api_key_create(name="tight", budget_usd=Decimal("0.01"), budget_period="day")
    fake_provider.script("alpha", Reply.ok(), Reply.bad_request("Invalid value for 'stop'."))
    client = client_for(live_url, raw)
    with pytest.raises(openai.BadRequestError):
        # Both prompts cost the same ($0.011), whichever of them answers.
        client.completions.create(model="alpha", prompt=["one two three", "four five six"])
    assert sum(r.cost_usd or 0 for r in records(api_key=key)) == Decimal("0.011")
    with pytest.raises(openai.RateLimitError) as error:
        client.completions.create(model="alpha", prompt="hi")
    assert error.value.body["code"] == "budget_exceeded"


def test_a_target_outside_the_allow_list_is_403(live_url, alpha):
    _, raw = api_key_create(name="narrow", allowed=["route:other"])
    with pytest.raises(openai.PermissionDeniedError):
        client_for(live_url, raw).completions.create(model="alpha", prompt="hi")


@pytest.fixture
def defaults(monkeypatch):
    """The shipped defaults on a fresh install: no provider key, so the simulated models answer."""
    for variable in PROVIDER_KEY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    config_import(text=(Path(settings.BASE_DIR) / "config" / "defaults.yaml").read_text())


@pytest.mark.parametrize("target", ["sim-smart", "route:summarization", "chain:fast"])
def test_the_defaults_complete_with_no_key_plain_and_streamed(live_url, key, defaults, target):
    client = client_for(live_url, key[1])
    answer = client.completions.create(
        model=target, prompt="Summarise: the gateway serves legacy completions."
    )
    assert answer.choices[0].text and answer.model.startswith("sim-")
    assert answer.choices[0].finish_reason in ("stop", "length")

    streamed = list(client.completions.create(model=target, prompt="Say hello.", stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices)
    assert {r.endpoint for r in records()} == {"completions"}


def test_djangos_front_serves_the_same_endpoint(client, alpha, key):
    response = client.post(
        "/v1/completions",
        data={"model": "alpha", "prompt": "through django"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key[1]}",
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["text"] == "Echo: through django"
    refused = client.get("/v1/completions", HTTP_AUTHORIZATION=f"Bearer {key[1]}")
    assert refused.status_code == 405 and refused["allow"] == "POST"
