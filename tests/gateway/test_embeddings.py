"""POST /v1/embeddings through the official `openai` client against the live gateway (uvicorn),
the models answered by the fake provider server on loopback (and the simulated kind)."""

import base64
import struct
from decimal import Decimal

import httpx
import openai
import pytest

from gateway.services import api_key_create
from metrics.models import CallRecord
from routing.config_io import config_import
from routing.models import ModelConfig
from tests.factories import FallbackChainFactory, ModelConfigFactory, ProviderFactory
from tests.fake_provider import Reply, fake_vector

pytestmark = pytest.mark.django_db(transaction=True)

PRICE = {"input_cost_per_1k": Decimal("1"), "output_cost_per_1k": Decimal("0")}


@pytest.fixture
def embedder(fake_provider):
    """An embedding model on the fake provider (OpenAI wire), $1 per 1K input tokens."""
    return fake_provider.model("emb", capabilities=["embedding"], embedding_dimensions=8, **PRICE)


@pytest.fixture
def key():
    return api_key_create(name="app")


def client_for(live_url: str, raw: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw, max_retries=0, timeout=20)


def records(**filters):
    return list(CallRecord.objects.filter(**filters).order_by("id"))


def test_floats_on_the_sdks_default_settings(live_url, embedder, key):
    raw = client_for(live_url, key[1]).embeddings.with_raw_response.create(
        model="emb", input=["the first text", "second"]
    )
    answer = raw.parse()
    assert [d.index for d in answer.data] == [0, 1]
    # The SDK asks for base64 unless told otherwise and decodes it: float32 precision.
    expected = [fake_vector("emb", t, 8) for t in ("the first text", "second")]
    for got, want in zip((d.embedding for d in answer.data), expected, strict=True):
        assert got == pytest.approx(want, rel=1e-6)
    assert answer.model == "emb"
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (4, 4)
    trace = raw.headers["x-orchestrator-trace-id"]
    assert Decimal(raw.headers["x-orchestrator-cost-usd"]) == Decimal("0.004")
    (record,) = records(trace_id=trace)
    assert (record.endpoint, record.source, record.api_key_id, record.input_tokens) == (
        "embeddings",
        "gateway",
        key[0].pk,
        4,
    )
    assert record.cost_usd == Decimal("0.004")


def test_encoding_format_float_answers_json_numbers(live_url, embedder, key):
    answer = client_for(live_url, key[1]).embeddings.create(
        model="emb", input="hello", encoding_format="float"
    )
    assert answer.data[0].embedding == fake_vector("emb", "hello", 8)


def test_encoding_format_base64_is_little_endian_float32(live_url, embedder, key):
    response = httpx.post(
        f"{live_url}/v1/embeddings",
        headers={"authorization": f"Bearer {key[1]}"},
        json={"model": "emb", "input": "hello", "encoding_format": "base64"},
    )
    encoded = response.json()["data"][0]["embedding"]
    values = struct.unpack("<8f", base64.b64decode(encoded))
    assert list(values) == pytest.approx(fake_vector("emb", "hello", 8), rel=1e-6)


def test_dimensions_and_user_reach_the_provider(live_url, embedder, key, fake_provider):
    answer = client_for(live_url, key[1]).embeddings.create(
        model="emb", input="hello", dimensions=4, user="u-7"
    )
    assert len(answer.data[0].embedding) == 4
    (sent,) = fake_provider.requests_for("emb")
    assert (sent.body["dimensions"], sent.body["user"]) == (4, "u-7")


def test_token_arrays_are_accepted(live_url, embedder, key, fake_provider):
    answer = client_for(live_url, key[1]).embeddings.create(model="emb", input=[[1, 2, 3], [9]])
    assert len(answer.data) == 2
    assert fake_provider.requests_for("emb")[0].body["input"] == [[1, 2, 3], [9]]


def test_a_batch_above_the_provider_limit_is_split_and_answered_in_order(live_url, key, fake_provider):
    provider = fake_provider.provider("openai", options={"embed_batch_max": 2})
    fake_provider.model("emb", provider=provider, capabilities=["embedding"], embedding_dimensions=8)
    texts = [f"text {i}" for i in range(5)]
    answer = client_for(live_url, key[1]).embeddings.create(model="emb", input=texts, encoding_format="float")
    assert [d.embedding for d in answer.data] == [fake_vector("emb", t, 8) for t in texts]
    assert sorted(len(r.body["input"]) for r in fake_provider.requests_for("emb")) == [1, 2, 2]


def test_a_chain_falls_over_and_says_so(live_url, key, fake_provider):
    first = fake_provider.model("emb-a", capabilities=["embedding"], embedding_dimensions=8)
    second = fake_provider.model("emb-b", capabilities=["embedding"], embedding_dimensions=8)
    FallbackChainFactory(name="vectors", models=[first, second])
    fake_provider.script("emb-a", Reply.unauthorized())
    raw = client_for(live_url, key[1]).embeddings.with_raw_response.create(model="chain:vectors", input="hi")
    assert raw.parse().model == "emb-b"
    assert raw.headers["x-orchestrator-attempts"] == "2"
    statuses = [
        (r.model_name, r.status, r.endpoint) for r in records(trace_id=raw.headers["x-orchestrator-trace-id"])
    ]
    assert statuses == [("emb-a", "error", "embeddings"), ("emb-b", "ok", "embeddings")]


def test_a_chat_model_is_refused_with_a_400_naming_the_model(live_url, key, fake_provider):
    fake_provider.model("chatter")
    with pytest.raises(openai.BadRequestError) as error:
        client_for(live_url, key[1]).embeddings.create(model="chatter", input="hi")
    assert error.value.body["param"] == "model"
    assert "not an embedding model" in error.value.message


def test_an_embedding_model_is_refused_for_chat(live_url, embedder, key):
    with pytest.raises(openai.BadRequestError) as error:
        client_for(live_url, key[1]).chat.completions.create(
            model="emb", messages=[{"role": "user", "content": "hi"}]
        )
    assert error.value.body["param"] == "model"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": 7, "input": "hi"}, "model"),
        ({"model": "emb"}, "input"),
        ({"model": "emb", "input": []}, "input"),
        ({"model": "emb", "input": [1.5]}, "input[0]"),
        ({"model": "emb", "input": ["a", [1]]}, "input"),
        ({"model": "emb", "input": {"text": "a"}}, "input"),
        ({"model": "emb", "input": "hi", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "emb", "input": "hi", "dimensions": "8"}, "dimensions"),
        ({"model": "emb", "input": "hi", "dimensions": 0}, "dimensions"),
        ({"model": "emb", "input": "hi", "user": 5}, "user"),
    ],
)
def test_bad_input_is_a_400_in_openais_shape_naming_the_field(live_url, embedder, key, body, param):
    response = httpx.post(
        f"{live_url}/v1/embeddings", headers={"authorization": f"Bearer {key[1]}"}, json=body
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert not records()


def test_the_rate_limit_applies(live_url, embedder):
    _, raw = api_key_create(name="slow", rpm=1)
    client = client_for(live_url, raw)
    client.embeddings.create(model="emb", input="hi")
    with pytest.raises(openai.RateLimitError) as error:
        client.embeddings.create(model="emb", input="hi")
    assert error.value.body["code"] == "rate_limit_exceeded"


def test_tpm_counts_the_input_tokens(live_url, embedder):
    _, raw = api_key_create(name="tokens", tpm=5)
    client = client_for(live_url, raw)
    client.embeddings.create(model="emb", input="one two three four five six")  # 6 tokens: over
    with pytest.raises(openai.RateLimitError) as error:
        client.embeddings.create(model="emb", input="hi")
    assert error.value.body["code"] == "tokens_rate_limit_exceeded"


def test_an_exhausted_budget_is_429(live_url, embedder):
    key, raw = api_key_create(name="tight", budget_usd=Decimal("0.005"), budget_period="day")
    client = client_for(live_url, raw)
    client.embeddings.create(model="emb", input="one two three four five six")  # $0.006
    with pytest.raises(openai.RateLimitError) as error:
        client.embeddings.create(model="emb", input="hi")
    assert error.value.body["code"] == "budget_exceeded"
    assert sum(r.cost_usd for r in records(api_key=key)) == Decimal("0.006")


def test_a_target_outside_the_allow_list_is_403(live_url, embedder):
    _, raw = api_key_create(name="chat-only", allowed=["gpt-4o"])
    with pytest.raises(openai.PermissionDeniedError):
        client_for(live_url, raw).embeddings.create(model="emb", input="hi")


def test_chat_completions_records_say_their_endpoint(live_url, key, fake_provider):
    fake_provider.model("alpha")
    raw = client_for(live_url, key[1]).chat.completions.with_raw_response.create(
        model="alpha", messages=[{"role": "user", "content": "hi"}]
    )
    (record,) = records(trace_id=raw.headers["x-orchestrator-trace-id"])
    assert record.endpoint == "chat.completions"


def test_the_defaults_embed_with_no_key_through_the_simulated_model(live_url, key, settings):
    config_import(text=(settings.BASE_DIR / "config" / "defaults.yaml").read_text())
    client = client_for(live_url, key[1])
    direct = client.embeddings.create(model="sim-embed", input="hello world")
    chained = client.embeddings.create(model="chain:embeddings", input="hello world")
    assert len(direct.data[0].embedding) == 1536
    assert chained.model == "sim-embed"  # text-embedding-3-small has no key here
    assert chained.data[0].embedding == pytest.approx(direct.data[0].embedding)


def test_a_simulated_model_of_its_own_dimension(live_url, key):
    provider = ProviderFactory(name="sim", options={"latency_ms_mean": 0, "latency_ms_jitter": 0})
    ModelConfigFactory(
        name="tiny-embed", provider=provider, capabilities=["embedding"], embedding_dimensions=3
    )
    answer = client_for(live_url, key[1]).embeddings.create(model="tiny-embed", input="x")
    assert len(answer.data[0].embedding) == 3
    assert ModelConfig.objects.get(name="tiny-embed").embedding_dimensions == 3
