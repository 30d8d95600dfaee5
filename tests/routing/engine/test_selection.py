"""Selection by capabilities, context and optimize_for; exclusions explained."""

import pytest

from routing import orchestrator
from routing.errors import InvalidRequest, NoCandidate, ProviderKeyMissing
from tests.factories import CallRecordFactory, ProviderFactory
from tests.routing.engine.conftest import simulated_model


def scores_from_votes(*, capabilities):
    """A stand-in QUALITY_SOURCE (the playground provides the real one)."""
    return {"runner-up": 0.9, "ranked-first": 0.2}


def test_cost_picks_the_cheapest_model_with_every_capability():
    simulated_model("dear", capabilities=["code", "chat"], input_cost_per_1k=1, output_cost_per_1k=2)
    simulated_model("cheap", capabilities=["code", "chat"], input_cost_per_1k=0.1, output_cost_per_1k=0.2)
    simulated_model("cheapest-but-no-code", capabilities=["chat"], input_cost_per_1k=0, output_cost_per_1k=0)

    assert orchestrator.select_model(["code", "chat"], optimize_for="cost") == "cheap"


def test_a_model_with_an_unknown_price_sorts_last_on_cost():
    simulated_model("mystery", capabilities=["chat"], model_id="no-such-model-in-any-catalogue")
    simulated_model("priced", capabilities=["chat"], input_cost_per_1k=5, output_cost_per_1k=5)

    assert orchestrator.select_model(["chat"], optimize_for="cost") == "priced"


def test_latency_uses_the_prior_until_enough_calls_are_measured(settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "LATENCY_MIN_CALLS": 5}
    simulated_model("fast-prior", capabilities=["chat"], latency_ms=100)
    simulated_model("slow-prior", capabilities=["chat"], latency_ms=900)
    CallRecordFactory.create_batch(4, model_name="slow-prior", latency_ms=20)

    assert orchestrator.select_model(["chat"], optimize_for="latency") == "fast-prior"


def test_measured_latency_takes_over_from_the_prior_once_there_is_enough_data(settings):
    from routing.engine.stats import stats_invalidate

    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "LATENCY_MIN_CALLS": 5}
    simulated_model("fast-prior", capabilities=["chat"], latency_ms=100)
    simulated_model("slow-prior", capabilities=["chat"], latency_ms=900)
    CallRecordFactory.create_batch(5, model_name="slow-prior", latency_ms=20)
    CallRecordFactory.create_batch(5, model_name="slow-prior", latency_ms=5000, status="error")
    stats_invalidate()

    assert orchestrator.select_model(["chat"], optimize_for="latency") == "slow-prior"


def test_quality_uses_the_operator_rank_with_unranked_models_last():
    simulated_model("unranked", capabilities=["chat"])
    simulated_model("second", capabilities=["chat"], quality_rank=2)
    simulated_model("first", capabilities=["chat"], quality_rank=1)

    assert orchestrator.select_model(["chat"], optimize_for="quality") == "first"


def test_quality_prefers_measured_scores_when_the_source_has_them(settings):
    settings.ORCHESTRATOR = {
        **settings.ORCHESTRATOR,
        "QUALITY_SOURCE": "tests.routing.engine.test_selection.scores_from_votes",
    }
    simulated_model("ranked-first", capabilities=["chat"], quality_rank=1)
    simulated_model("runner-up", capabilities=["chat"], quality_rank=2)

    assert orchestrator.select_model(["chat"], optimize_for="quality") == "runner-up"


def test_quality_falls_back_to_the_rank_when_the_source_does_not_exist(settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "QUALITY_SOURCE": "nowhere.to.be.found"}
    simulated_model("ranked-first", capabilities=["chat"], quality_rank=1)
    simulated_model("runner-up", capabilities=["chat"], quality_rank=2)

    assert orchestrator.select_model(["chat"], optimize_for="quality") == "ranked-first"


def test_it_skips_disabled_keyless_and_provider_disabled_models_and_says_why(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    simulated_model("off", capabilities=["chat"], enabled=False)
    simulated_model(
        "no-key",
        capabilities=["chat"],
        provider=ProviderFactory(name="needs-key", kind="openai", api_key_env="NO_SUCH_KEY_VAR"),
    )
    simulated_model(
        "provider-off", capabilities=["chat"], provider=ProviderFactory(name="off-p", enabled=False)
    )
    simulated_model("other", capabilities=["vision"])
    simulated_model("tiny", capabilities=["chat"], context_window=10)

    with pytest.raises(NoCandidate) as caught:
        orchestrator.select_model(["chat"], tokens_needed=100)

    excluded = caught.value.excluded
    assert excluded["off"] == "model disabled"
    assert "NO_SUCH_KEY_VAR" in excluded["no-key"]
    assert "off-p disabled" in excluded["provider-off"]
    assert "lacks capabilities: chat" in excluded["other"]
    assert excluded["tiny"] == "context window 10 < 100 tokens needed"
    assert "chat" in caught.value.message


def test_a_capability_no_model_has_is_named():
    simulated_model("a", capabilities=["chat"])

    with pytest.raises(NoCandidate, match="telepathy"):
        orchestrator.select_model(["telepathy"])


def test_a_prompt_longer_than_every_window_is_an_invalid_request():
    simulated_model("small", capabilities=["chat"], context_window=100)
    simulated_model("smaller", capabilities=["chat"], context_window=50)

    with pytest.raises(InvalidRequest, match="largest: 100"):
        orchestrator.select_model(["chat"], tokens_needed=5000)


def test_context_needed_excludes_small_windows():
    simulated_model(
        "small", capabilities=["chat"], context_window=100, input_cost_per_1k=0, output_cost_per_1k=0
    )
    simulated_model(
        "big", capabilities=["chat"], context_window=10_000, input_cost_per_1k=1, output_cost_per_1k=1
    )

    assert orchestrator.select_model(["chat"], tokens_needed=500) == "big"


def test_when_only_keyless_models_could_answer_it_names_the_missing_variable(monkeypatch):
    monkeypatch.delenv("MISSING_OPENAI_KEY", raising=False)
    simulated_model(
        "gpt",
        capabilities=["chat"],
        provider=ProviderFactory(name="openai", kind="openai", api_key_env="MISSING_OPENAI_KEY"),
    )

    with pytest.raises(ProviderKeyMissing, match="MISSING_OPENAI_KEY"):
        orchestrator.select_model(["chat"])


def test_a_config_change_is_seen_by_the_next_call():
    cheap = simulated_model("cheap", capabilities=["chat"], input_cost_per_1k=0, output_cost_per_1k=0)
    simulated_model("dear", capabilities=["chat"], input_cost_per_1k=1, output_cost_per_1k=1)
    assert orchestrator.select_model(["chat"]) == "cheap"

    cheap.enabled = False
    cheap.save()

    assert orchestrator.select_model(["chat"]) == "dear"


def test_a_capability_change_is_seen_by_the_next_call():
    model = simulated_model("m", capabilities=["chat"])
    with pytest.raises(NoCandidate):
        orchestrator.select_model(["vision"])

    from routing.models import Capability

    model.capabilities.add(Capability.objects.create(slug="vision"))

    assert orchestrator.select_model(["vision"]) == "m"
