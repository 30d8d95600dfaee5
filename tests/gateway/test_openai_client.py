"""The official `openai` client pointed at the gateway served by uvicorn (the real ASGI app),
with models answered by the fake provider server on loopback."""

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from gateway.models import ApiKey
from gateway.services import api_key_create, api_key_revoke
from metrics.models import CallRecord
from routing.orchestrator import records_flush
from routing.services import route_update_prompt
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hello there friend"}]
ECHO = "Echo: hello there friend"  # the fake's default reply: 3 tokens in, 4 out


@pytest.fixture
def models(fake_provider):
    """Two priced models on the fake provider (the echo reply: one token per word)."""
    price = {"input_cost_per_1k": Decimal("1"), "output_cost_per_1k": Decimal("2")}
    return fake_provider.model("alpha", **price), fake_provider.model("beta", **price)


@pytest.fixture
def key() -> tuple[ApiKey, str]:
    return api_key_create(name="app")


def client_for(live_url: str, raw: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw, max_retries=0, timeout=20)


def records(**filters):
    return list(CallRecord.objects.filter(**filters).order_by("id"))


def test_a_plain_completion_through_a_model(live_url, models, key):
    raw = client_for(live_url, key[1]).chat.completions.with_raw_response.create(
        model="alpha", messages=HELLO, temperature=0.2, max_tokens=50
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == ECHO
    assert completion.model == "alpha"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 4)
    trace = raw.headers["x-orchestrator-trace-id"]
    assert raw.headers["x-orchestrator-attempts"] == "1"
    # 3 tokens in at $1/1K + 4 out at $2/1K
    assert Decimal(raw.headers["x-orchestrator-cost-usd"]) == Decimal("0.011")
    (record,) = records(trace_id=trace)
    assert (record.api_key_id, record.source, record.model_name, record.status) == (
        key[0].pk,
        "gateway",
        "alpha",
        "ok",
    )


def test_temperature_and_max_tokens_reach_the_provider(live_url, models, key, fake_provider):
    client_for(live_url, key[1]).chat.completions.create(
        model="alpha", messages=HELLO, temperature=0.3, max_tokens=17
    )
    (received,) = fake_provider.requests_for("alpha")
    assert received.body["temperature"] == 0.3
    assert 17 in (received.body.get("max_tokens"), received.body.get("max_completion_tokens"))


def test_a_streamed_completion_with_usage(live_url, models, key):
    stream = client_for(live_url, key[1]).chat.completions.create(
        model="alpha", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ECHO
    assert {c.model for c in chunks} == {"alpha"}
    assert chunks[-2].choices[0].finish_reason == "stop"
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and (usage.prompt_tokens, usage.completion_tokens) == (3, 4)
    (record,) = records(api_key=key[0])
    assert (record.stream, record.status, record.source) == (True, "ok", "gateway")


def test_a_stream_is_sse_events_role_text_finish_usage_then_done(live_url, models, key):
    body = {"model": "alpha", "messages": HELLO, "stream": True, "stream_options": {"include_usage": True}}
    response = httpx.post(
        f"{live_url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key[1]}"}
    )

    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(e.startswith("data: {") for e in events[:-2])
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    trace_id = response.headers["x-orchestrator-trace-id"]
    for chunk in chunks:
        assert (chunk["id"], chunk["object"], chunk["model"]) == (
            f"chatcmpl-{trace_id}",
            "chat.completion.chunk",
            "alpha",
        )
        assert chunk["created"] == chunks[0]["created"]
    choices = [c["choices"][0] for c in chunks[:-1]]
    assert choices[0] == {
        "index": 0,
        "delta": {"role": "assistant", "content": ""},
        "logprobs": None,
        "finish_reason": None,
    }
    assert "".join(c["delta"].get("content", "") for c in choices) == ECHO
    assert all(c["finish_reason"] is None for c in choices[:-1])
    assert (choices[-1]["delta"], choices[-1]["finish_reason"]) == ({}, "stop")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 7
    assert chunks[-1]["orchestrator"]["trace_id"] == trace_id


def test_a_route_gets_the_whole_conversation_after_its_own_prompt(live_url, models, key, fake_provider):
    route = TaskRouteFactory(task_type="summarize", model=models[1])
    route_update_prompt(route=route, system_prompt="You summarise.", user=None)
    messages = [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "summarize"}, {"type": "text", "text": "this"}],
        },
    ]
    completion = client_for(live_url, key[1]).chat.completions.create(
        model="route:summarize", messages=messages
    )
    assert completion.model == "beta"
    (received,) = fake_provider.requests_for("beta")
    assert received.body["messages"] == [
        {"role": "system", "content": "You summarise."},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "summarize\nthis"},
    ]
    (record,) = records(api_key=key[0])
    assert record.task_type == "summarize"


def test_a_streamed_completion_through_a_route(live_url, models, key):
    TaskRouteFactory(task_type="summarize", model=models[0])
    stream = client_for(live_url, key[1]).chat.completions.create(
        model="route:summarize", messages=HELLO, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == ECHO


def test_a_chain_falls_back_and_says_so(live_url, models, key, fake_provider):
    FallbackChainFactory(name="safe", models=list(models))
    fake_provider.script("alpha", *[Reply.model_not_found()] * 5)
    raw = client_for(live_url, key[1]).chat.completions.with_raw_response.create(
        model="chain:safe", messages=HELLO
    )
    completion = raw.parse()
    assert completion.model == "beta"
    assert int(raw.headers["x-orchestrator-attempts"]) >= 2
    statuses = [(r.model_name, r.status) for r in records(trace_id=raw.headers["x-orchestrator-trace-id"])]
    assert statuses[-1] == ("beta", "ok") and ("alpha", "error") in statuses
    assert all(r.api_key_id == key[0].pk for r in records(trace_id=raw.headers["x-orchestrator-trace-id"]))


def test_a_streamed_chain_falls_back_before_the_first_token(live_url, models, key, fake_provider):
    FallbackChainFactory(name="safe", models=list(models))
    fake_provider.script("alpha", *[Reply.model_not_found()] * 5)
    stream = client_for(live_url, key[1]).chat.completions.create(
        model="chain:safe", messages=HELLO, stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ECHO
    assert chunks[-1].model == "beta"


def test_an_unknown_model_route_or_chain_is_404(live_url, models, key):
    client = client_for(live_url, key[1])
    for name in ("no-such-model", "route:nope", "chain:nope"):
        with pytest.raises(openai.NotFoundError) as error:
            client.chat.completions.create(model=name, messages=HELLO)
        assert error.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="route:nope", messages=HELLO, stream=True)


def test_a_missing_or_revoked_key_is_401(live_url, models, key):
    with pytest.raises(openai.AuthenticationError):
        client_for(live_url, "ork-" + "q" * 43).chat.completions.create(model="alpha", messages=HELLO)
    client = client_for(live_url, key[1])
    client.chat.completions.create(model="alpha", messages=HELLO)
    api_key_revoke(key=key[0])
    with pytest.raises(openai.AuthenticationError) as error:
        client.chat.completions.create(model="alpha", messages=HELLO)
    assert "revoked" in error.value.message


def test_a_target_outside_the_allow_list_is_403(live_url, models):
    _, raw = api_key_create(name="narrow", allowed=["beta"])
    client = client_for(live_url, raw)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="alpha", messages=HELLO)
    assert client.chat.completions.create(model="beta", messages=HELLO).model == "beta"
    assert [m.id for m in client.models.list()] == ["beta"]


def test_a_bad_body_is_400_naming_the_field(live_url, models, key):
    with pytest.raises(openai.BadRequestError) as error:
        client_for(live_url, key[1]).chat.completions.create(
            model="alpha", messages=[{"role": "wizard", "content": "x"}]
        )
    assert error.value.body["param"] == "messages[0].role"


def test_a_huge_body_is_413_before_it_is_read(live_url, key, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "GATEWAY_MAX_BODY_BYTES": 10_000}
    body = json.dumps({"model": "alpha", "messages": [{"role": "user", "content": "x" * 50_000}]})
    response = httpx.post(
        f"{live_url}/v1/chat/completions", content=body, headers={"authorization": f"Bearer {key[1]}"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_invalid_utf8_and_broken_json_are_400(live_url, key):
    for body in (b'{"model": "\xff"}', b'{"model": "alpha", "messages": [', b"\x00" * 10):
        response = httpx.post(
            f"{live_url}/v1/chat/completions", content=body, headers={"authorization": f"Bearer {key[1]}"}
        )
        assert response.status_code == 400, body
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_the_rate_limit_is_429_with_retry_after(live_url, models):
    _, raw = api_key_create(name="slow", rpm=2)
    client = client_for(live_url, raw)
    client.chat.completions.create(model="alpha", messages=HELLO)
    client.chat.completions.create(model="alpha", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as error:
        client.chat.completions.create(model="alpha", messages=HELLO)
    assert 1 <= int(error.value.response.headers["retry-after"]) <= 60
    assert error.value.body["code"] == "rate_limit_exceeded"


def test_an_exhausted_budget_is_429_until_the_period_rolls_over(live_url, models, monkeypatch):
    import gateway.limits

    key, raw = api_key_create(name="tight", budget_usd=Decimal("0.02"), budget_period="day")
    client = client_for(live_url, raw)
    client.chat.completions.create(model="alpha", messages=HELLO)  # 0.011
    client.chat.completions.create(model="alpha", messages=HELLO)  # 0.022: over
    with pytest.raises(openai.RateLimitError) as error:
        client.chat.completions.create(model="alpha", messages=HELLO)
    assert error.value.body["code"] == "budget_exceeded"
    assert "resets at" in error.value.message
    assert sum(r.cost_usd for r in records(api_key=key)) == Decimal("0.022")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    monkeypatch.setattr(gateway.limits, "utcnow", lambda: tomorrow)
    assert client.chat.completions.create(model="alpha", messages=HELLO).model == "alpha"


def test_when_every_model_fails_it_is_502_with_the_attempts(live_url, models, key, fake_provider):
    FallbackChainFactory(name="doomed", models=list(models))
    fake_provider.script("alpha", *[Reply.model_not_found()] * 5)
    fake_provider.script("beta", *[Reply.model_not_found()] * 5)
    with pytest.raises(openai.APIStatusError) as error:
        client_for(live_url, key[1]).chat.completions.create(model="chain:doomed", messages=HELLO)
    assert error.value.status_code == 502
    attempts = error.value.body["attempts"]
    assert [a["model"] for a in attempts] == ["alpha", "beta"]
    assert error.value.response.headers["x-orchestrator-attempts"] == "2"


def test_the_models_endpoint_lists_models_routes_and_chains(live_url, models, key):
    TaskRouteFactory(task_type="summarize", model=models[0])
    FallbackChainFactory(name="safe", models=list(models))
    ids = [m.id for m in client_for(live_url, key[1]).models.list()]
    assert ids == ["alpha", "beta", "route:summarize", "chain:safe"]


def test_an_abandoned_stream_is_recorded_as_cancelled(live_url, models, key, fake_provider):
    fake_provider.script("alpha", Reply.slow(token_interval_s=0.5, text=" ".join(["word"] * 40)))
    url = urlsplit(live_url)
    body = json.dumps({"model": "alpha", "messages": HELLO, "stream": True}).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {key[1]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b'"content":"word' not in received:
            received += sock.recv(4096)
    # The client is gone: the upstream request is dropped and the attempt recorded as cancelled.
    assert fake_provider.wait_for(
        lambda history: any(r.disconnected for r in history if r.model == "alpha"), timeout=10
    )
    # The cancelled record waits in the engine's buffer for the next flush; flush until it is in.
    pause = threading.Event()
    for _ in range(100):
        records_flush()
        if CallRecord.objects.filter(api_key=key[0], status="cancelled").exists():
            break
        pause.wait(0.1)
    (record,) = records(api_key=key[0])
    assert (record.status, record.stream) == ("cancelled", True)


def test_the_server_keeps_serving_after_bad_requests(live_url, models, key):
    for body in (b"{", b"\xff", b"[]" * 1000):
        httpx.post(
            f"{live_url}/v1/chat/completions", content=body, headers={"authorization": f"Bearer {key[1]}"}
        )
    assert (
        client_for(live_url, key[1]).chat.completions.create(model="alpha", messages=HELLO).model == "alpha"
    )


def test_a_stream_where_every_model_fails_first_is_a_502_not_a_broken_stream(
    live_url, models, key, fake_provider
):
    FallbackChainFactory(name="doomed", models=list(models))
    fake_provider.script("alpha", *[Reply.model_not_found()] * 5)
    fake_provider.script("beta", *[Reply.model_not_found()] * 5)
    with pytest.raises(openai.APIStatusError) as error:
        client_for(live_url, key[1]).chat.completions.create(
            model="chain:doomed", messages=HELLO, stream=True
        )
    assert error.value.status_code == 502
    assert error.value.response.headers["x-orchestrator-trace-id"]


def test_a_stream_cut_after_the_first_token_ends_with_an_error_event(live_url, models, key, fake_provider):
    fake_provider.script("alpha", Reply.stream_cut(after_tokens=2, text="one two three four"))
    stream = client_for(live_url, key[1]).chat.completions.create(model="alpha", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError):
        list(stream)
    (record,) = records(api_key=key[0])
    assert record.status == "error"


def test_a_model_route_or_chain_can_be_retrieved_by_id(live_url, models, key):
    TaskRouteFactory(task_type="summarize", model=models[0])
    client = client_for(live_url, key[1])
    assert client.models.retrieve("alpha").owned_by == "fake-openai"
    assert client.models.retrieve("route:summarize").id == "route:summarize"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("chain:nope")


def test_a_chain_whose_every_step_times_out_is_504(live_url, models, key, fake_provider, settings):
    from routing.models import ChainStep

    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0}
    chain = FallbackChainFactory(name="slow", models=list(models))
    ChainStep.objects.filter(chain=chain).update(timeout_s=0.3)
    fake_provider.script("alpha", Reply.hang(5))
    fake_provider.script("beta", Reply.hang(5))
    with pytest.raises(openai.APIStatusError) as error:
        client_for(live_url, key[1]).chat.completions.create(model="chain:slow", messages=HELLO)
    assert error.value.status_code == 504
    assert {a["status"] for a in error.value.body["attempts"]} == {"timeout"}


LONE_SURROGATE = json.dumps(
    {
        "model": "alpha",
        "messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "x\ud800y"}],
    }
).encode()  # json.dumps writes the lone surrogate as the escape \ud800


def test_a_lone_surrogate_is_400_naming_the_field_through_the_openai_client(
    live_url, models, key, fake_provider
):
    # The client cannot encode such text itself: the body goes as JSON bytes, as other clients send it.
    with pytest.raises(openai.BadRequestError) as refused:
        client_for(live_url, key[1]).post(
            "/chat/completions",
            cast_to=openai.types.chat.ChatCompletion,
            content=LONE_SURROGATE,
            options={"headers": {"content-type": "application/json"}},
        )
    error = refused.value.body
    assert refused.value.status_code == 400
    assert (error["param"], error["code"]) == ("messages[1].content", "invalid_encoding")
    assert "messages[1].content" in error["message"] and "U+D800" in error["message"]
    assert fake_provider.requests_for("alpha") == [] and records() == []


def test_lone_surrogates_never_take_the_model_away_from_other_keys(live_url, models, key, fake_provider):
    for _ in range(3):  # each would have counted three transient failures against the model
        response = httpx.post(
            f"{live_url}/v1/chat/completions",
            content=LONE_SURROGATE,
            headers={"authorization": f"Bearer {key[1]}", "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "messages[1].content"
    _, other = api_key_create(name="another-tenant")
    assert client_for(live_url, other).chat.completions.create(model="alpha", messages=HELLO).model == "alpha"
    assert len(fake_provider.requests_for("alpha")) == 1


def test_a_surrogate_pair_is_ordinary_text(live_url, models, key, fake_provider):
    body = b'{"model": "alpha", "messages": [{"role": "user", "content": "smile \\ud83d\\ude00"}]}'
    response = httpx.post(
        f"{live_url}/v1/chat/completions", content=body, headers={"authorization": f"Bearer {key[1]}"}
    )
    assert response.status_code == 200
    (received,) = fake_provider.requests_for("alpha")
    assert received.body["messages"][0]["content"] == "smile \U0001f600"
