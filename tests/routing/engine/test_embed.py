"""Embeddings through the engine: the same attempt loop as chat (skips, retries, fallbacks, one
record per attempt), on the simulated kind and through the real SDK against the fake server."""

import math

import pytest

from metrics.models import CallRecord
from routing import orchestrator
from routing.errors import AllAttemptsFailed, InvalidRequest, NoCandidate
from routing.providers.simulated.embed import simulated_vector
from tests.factories import FallbackChainFactory
from tests.fake_provider import FAKE_KEY, Reply, fake_vector
from tests.routing.engine.conftest import simulated_model

EMBEDDING = ["embedding"]


@pytest.fixture
def fast_retries(settings):
    settings.ORCHESTRATOR = {
        **settings.ORCHESTRATOR,
        "RETRY_BASE_S": 0.001,
        "RETRY_MAX_DELAY_S": 0.01,
        "RETRY_MAX": 1,
        "BREAKER_FAILURES": 100,
    }


def norm(vector):
    return math.sqrt(sum(v * v for v in vector))


# -- simulated -------------------------------------------------------------------------


def test_a_simulated_model_gives_deterministic_normalised_vectors_of_its_dimension(db):
    simulated_model("sim-embed", capabilities=EMBEDDING, embedding_dimensions=64)

    first = orchestrator.embed(["the cat sat", "quarterly revenue"], model="sim-embed")
    again = orchestrator.embed("the cat sat", model="sim-embed")

    assert first.dimensions == 64
    assert [len(v) for v in first.vectors] == [64, 64]
    assert all(norm(v) == pytest.approx(1.0) for v in first.vectors)
    assert again.vectors[0] == first.vectors[0]
    assert first.simulated


def test_simulated_vectors_of_texts_sharing_words_are_closer_than_of_unrelated_ones():
    cat, kitten, tax = (simulated_vector(t, 256) for t in ("the cat sat on the mat", "a cat on a mat", "tax"))

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(cat, kitten) > cosine(cat, tax) + 0.3


def test_it_honours_the_requested_dimensions(db):
    simulated_model("sim-embed", capabilities=EMBEDDING, embedding_dimensions=64)

    result = orchestrator.embed("hello", model="sim-embed", dimensions=12)

    assert result.dimensions == 12 and len(result.vectors[0]) == 12


def test_each_attempt_is_recorded_with_its_input_tokens_cost_and_a_short_view_of_the_input(db):
    simulated_model(
        "sim-embed",
        capabilities=EMBEDDING,
        embedding_dimensions=16,
        input_cost_per_1k="0.001",
        output_cost_per_1k="0",
    )

    result = orchestrator.embed(["one two three", "four five"], model="sim-embed", endpoint="embeddings")

    record = CallRecord.objects.get(trace_id=result.trace_id)
    assert record.status == "ok"
    assert record.input_tokens == 5 == result.usage.input_tokens
    assert record.output_tokens == 0
    assert record.cost_usd == result.cost_usd and result.cost_usd > 0
    assert record.endpoint == "embeddings"
    assert "2 inputs:" in record.request_text and "[1] four five" in record.request_text
    assert record.response_text == "2 vectors × 16 dimensions"


# -- the wrong kind of model -------------------------------------------------------------


def test_a_chat_model_named_for_embeddings_is_refused_naming_the_model(db):
    simulated_model("chatter", capabilities=["chat"])

    with pytest.raises(InvalidRequest) as caught:
        orchestrator.embed("hello", model="chatter")

    assert caught.value.param == "model"
    assert "not an embedding model" in caught.value.message
    assert not CallRecord.objects.exists()


def test_an_embedding_model_named_for_chat_is_refused_naming_the_model(db):
    simulated_model("sim-embed", capabilities=EMBEDDING, embedding_dimensions=8)

    with pytest.raises(InvalidRequest) as caught:
        orchestrator.complete([{"role": "user", "content": "hi"}], model="sim-embed")

    assert caught.value.param == "model"
    assert "embedding model" in caught.value.message


def test_chat_selection_never_picks_an_embedding_model_and_embeddings_never_a_chat_one(db):
    simulated_model(
        "cheap-embed",
        capabilities=EMBEDDING,
        embedding_dimensions=8,
        input_cost_per_1k="0",
        output_cost_per_1k="0",
    )
    simulated_model("chatter", capabilities=[], input_cost_per_1k="0.01", output_cost_per_1k="0.01")

    chat = orchestrator.complete([{"role": "user", "content": "hi"}])
    vectors = orchestrator.embed("hi")

    assert chat.model == "chatter"
    assert vectors.model == "cheap-embed"


def test_a_chat_model_in_a_chain_is_passed_over_as_capability(db):
    chatter = simulated_model("chatter", capabilities=[])
    embedder = simulated_model("sim-embed", capabilities=EMBEDDING, embedding_dimensions=8)
    FallbackChainFactory(name="mixed", models=[chatter, embedder])

    result = orchestrator.embed("hello", chain="mixed")

    assert result.model == "sim-embed"
    assert [(s.model, s.category) for s in result.skipped] == [("chatter", "capability")]


# -- through the fake provider ------------------------------------------------------------


def test_openai_embeddings_go_over_the_openai_wire_with_dimensions_and_user(fake_provider):
    fake_provider.model("text-embedding-3-small", capabilities=EMBEDDING, embedding_dimensions=1536)

    result = orchestrator.embed(
        ["alpha", "beta gamma"], model="text-embedding-3-small", dimensions=32, user="u-1"
    )

    sent = fake_provider.requests_for("text-embedding-3-small")[0]
    assert sent.path == "/v1/embeddings"
    assert sent.body["input"] == ["alpha", "beta gamma"]
    assert sent.body["dimensions"] == 32 and sent.body["user"] == "u-1"
    assert result.vectors == [fake_vector("text-embedding-3-small", t, 32) for t in ("alpha", "beta gamma")]
    assert result.usage.input_tokens == 3


def test_token_arrays_are_sent_as_they_are(fake_provider):
    fake_provider.model("emb", capabilities=EMBEDDING, embedding_dimensions=8)

    result = orchestrator.embed([[1, 2, 3], [4]], model="emb")

    assert fake_provider.requests_for("emb")[0].body["input"] == [[1, 2, 3], [4]]
    assert len(result.vectors) == 2 and result.usage.input_tokens == 4


def test_azure_embeddings_use_the_deployment_path(fake_provider):
    fake_provider.model(
        "azure-embed",
        kind="azure_openai",
        model_id="embed-deploy",
        capabilities=EMBEDDING,
        embedding_dimensions=8,
    )

    result = orchestrator.embed("hello", model="azure-embed")

    sent = fake_provider.requests_for("embed-deploy")[0]
    assert sent.path == "/openai/deployments/embed-deploy/embeddings"
    assert len(result.vectors[0]) == 8


def test_gemini_embeddings_use_its_native_batch_wire_and_key_header(fake_provider):
    fake_provider.model(
        "gemini-embedding-001", kind="gemini", capabilities=EMBEDDING, embedding_dimensions=16
    )

    result = orchestrator.embed(["one", "two"], model="gemini-embedding-001", dimensions=16)

    sent = fake_provider.requests_for("gemini-embedding-001")[0]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == FAKE_KEY
    assert "authorization" not in sent.headers
    assert [r["outputDimensionality"] for r in sent.body["requests"]] == [16, 16]
    assert result.vectors == [fake_vector("gemini-embedding-001", t, 16) for t in ("one", "two")]
    assert result.usage.input_tokens > 0


def test_a_batch_above_the_provider_limit_is_split_and_joined_in_order(fake_provider):
    provider = fake_provider.provider("openai", options={"embed_batch_max": 3})
    fake_provider.model("emb", provider=provider, capabilities=EMBEDDING, embedding_dimensions=8)
    texts = [f"text number {i}" for i in range(7)]

    result = orchestrator.embed(texts, model="emb")

    batches = sorted(r.body["input"] for r in fake_provider.requests_for("emb"))
    assert sorted(map(len, batches)) == [1, 3, 3]
    assert result.vectors == [fake_vector("emb", t, 8) for t in texts]
    assert result.usage.input_tokens == 21
    assert CallRecord.objects.filter(trace_id=result.trace_id).count() == 1


def test_an_embeddings_chain_falls_over_to_its_next_model(fake_provider, fast_retries):
    first = fake_provider.model("emb-a", capabilities=EMBEDDING, embedding_dimensions=8)
    second = fake_provider.model("emb-b", capabilities=EMBEDDING, embedding_dimensions=8)
    FallbackChainFactory(name="vectors", models=[first, second])
    fake_provider.script("emb-a", Reply.server_error(), Reply.server_error())

    result = orchestrator.embed("hello", chain="vectors")

    assert result.model == "emb-b"
    assert [(a.model, a.status) for a in result.attempts] == [
        ("emb-a", "error"),
        ("emb-a", "error"),
        ("emb-b", "ok"),
    ]
    statuses = list(
        CallRecord.objects.filter(trace_id=result.trace_id).order_by("id").values_list("model_name", "status")
    )
    assert statuses == [("emb-a", "error"), ("emb-a", "error"), ("emb-b", "ok")]


def test_a_model_of_another_dimension_is_passed_over(fake_provider):
    first = fake_provider.model("emb-a", capabilities=EMBEDDING, embedding_dimensions=8)
    other = fake_provider.model("emb-wide", capabilities=EMBEDDING, embedding_dimensions=16)
    same = fake_provider.model("emb-b", capabilities=EMBEDDING, embedding_dimensions=8)
    FallbackChainFactory(name="vectors", models=[first, other, same])  # saved past the form's rule
    fake_provider.script("emb-a", Reply.unauthorized())

    result = orchestrator.embed("hello", chain="vectors")

    assert result.model == "emb-b"
    assert ("emb-wide", "dimension") in [(s.model, s.category) for s in result.skipped]
    assert not fake_provider.requests_for("emb-wide")


def test_an_answer_of_the_wrong_size_fails_over_as_model_permanent(fake_provider):
    first = fake_provider.model("emb-a", capabilities=EMBEDDING, embedding_dimensions=8)
    second = fake_provider.model("emb-b", capabilities=EMBEDDING, embedding_dimensions=8)
    FallbackChainFactory(name="vectors", models=[first, second])
    fake_provider.script("emb-a", Reply.embedding(dimensions=5))

    result = orchestrator.embed("hello", chain="vectors")

    assert result.model == "emb-b"
    failed = result.attempts[0]
    assert failed.error_class == "model_permanent" and "5-dimensional" in failed.error


def test_gemini_is_passed_over_for_token_arrays_and_named_when_nothing_is_left(fake_provider):
    gemini = fake_provider.model("g-embed", kind="gemini", capabilities=EMBEDDING, embedding_dimensions=8)
    openai = fake_provider.model("o-embed", capabilities=EMBEDDING, embedding_dimensions=8)
    FallbackChainFactory(name="both", models=[gemini, openai])
    FallbackChainFactory(name="gemini-only", models=[gemini])

    result = orchestrator.embed([[1, 2]], chain="both")
    with pytest.raises(InvalidRequest) as caught:
        orchestrator.embed([[1, 2]], chain="gemini-only")

    assert result.model == "o-embed"
    assert [(s.model, s.category) for s in result.skipped] == [("g-embed", "unsupported")]
    assert caught.value.param == "input"
    assert not fake_provider.requests_for("g-embed")


def test_a_request_invalid_error_stops_the_chain(fake_provider):
    first = fake_provider.model("emb-a", capabilities=EMBEDDING, embedding_dimensions=8)
    second = fake_provider.model("emb-b", capabilities=EMBEDDING, embedding_dimensions=8)
    FallbackChainFactory(name="vectors", models=[first, second])
    fake_provider.script("emb-a", Reply.bad_request("input too long"))

    with pytest.raises(InvalidRequest):
        orchestrator.embed("hello", chain="vectors")

    assert not fake_provider.requests_for("emb-b")


def test_when_every_model_fails_the_error_lists_the_attempts(fake_provider, fast_retries):
    fake_provider.model("emb-a", capabilities=EMBEDDING, embedding_dimensions=8)
    fake_provider.set_default("emb-a", Reply.server_error())

    with pytest.raises(AllAttemptsFailed) as caught:
        orchestrator.embed("hello", model="emb-a")

    assert [a.status for a in caught.value.attempts] == ["error", "error"]


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ([], "input"),
        ("", "input[0]"),
        (["ok", ""], "input[1]"),
        (["text", [1, 2]], "input"),
        ([{"text": "x"}], "input[0]"),
        (42, "input"),
        ([[1, -2]], "input[0]"),
    ],
)
def test_bad_input_is_refused_naming_the_field(db, value, param):
    simulated_model("sim-embed", capabilities=EMBEDDING, embedding_dimensions=8)

    with pytest.raises(InvalidRequest) as caught:
        orchestrator.embed(value, model="sim-embed")

    assert caught.value.param == param


@pytest.mark.parametrize("dimensions", [0, -3, "12", True, 10**9])
def test_bad_dimensions_are_refused(db, dimensions):
    simulated_model("sim-embed", capabilities=EMBEDDING, embedding_dimensions=8)

    with pytest.raises(InvalidRequest) as caught:
        orchestrator.embed("x", model="sim-embed", dimensions=dimensions)

    assert caught.value.param == "dimensions"


def test_no_embedding_model_at_all_is_a_clear_no_candidate(db):
    simulated_model("chatter", capabilities=[])

    with pytest.raises(NoCandidate) as caught:
        orchestrator.embed("x")

    assert "embedding" in caught.value.message


def test_sampling_arguments_are_not_embeddings_arguments(db):
    with pytest.raises(TypeError):
        orchestrator.embed("x", temperature=0.5)
