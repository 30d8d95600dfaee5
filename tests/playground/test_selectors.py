from decimal import Decimal

import pytest
from django.conf import settings
from django.test import override_settings

from playground import selectors, services
from routing.models import ModelConfig
from tests.playground.conftest import keyless_model, sim_model

pytestmark = pytest.mark.django_db


def _vote_many(a: str, b: str, winner: str, n: int, capability: str = "code") -> None:
    for _ in range(n):
        services.vote_create(
            user=None, prompt="p", model_a=a, model_b=b, winner=winner, capability=capability
        )


@override_settings(ORCHESTRATOR={**settings.ORCHESTRATOR, "RATING_MIN_VOTES": 10})
def test_quality_scores_list_only_models_with_enough_votes():
    _vote_many("m1", "m2", "a", 8)
    _vote_many("m1", "m3", "a", 3)
    scores = selectors.model_quality_scores(capabilities=["code"])
    assert set(scores) == {"m1"}  # m1: 11 votes; m2: 8; m3: 3


@override_settings(ORCHESTRATOR={**settings.ORCHESTRATOR, "RATING_MIN_VOTES": 5})
def test_quality_scores_rank_the_preferred_model_higher():
    _vote_many("m1", "m2", "b", 6)
    _vote_many("m1", "m2", "a", 1)
    scores = selectors.model_quality_scores(capabilities=["code"])
    assert scores["m2"] > scores["m1"]


@override_settings(ORCHESTRATOR={**settings.ORCHESTRATOR, "RATING_MIN_VOTES": 5})
def test_quality_scores_count_only_votes_in_the_capabilities_asked():
    _vote_many("m1", "m2", "a", 6, capability="code")
    _vote_many("m1", "m2", "b", 6, capability="writing")
    assert selectors.model_quality_scores(capabilities=["reasoning"]) == {}
    code = selectors.model_quality_scores(capabilities=["code"])
    writing = selectors.model_quality_scores(capabilities=["writing"])
    assert code["m1"] > code["m2"] and writing["m2"] > writing["m1"]


@override_settings(ORCHESTRATOR={**settings.ORCHESTRATOR, "RATING_MIN_VOTES": 2})
def test_quality_scores_follow_new_votes_despite_the_cache(django_assert_num_queries):
    _vote_many("m1", "m2", "a", 2)
    first = selectors.model_quality_scores(capabilities=["code"])
    with django_assert_num_queries(0):  # cached: the routing path does not touch the database
        assert selectors.model_quality_scores(capabilities=["code"]) == first
    _vote_many("m1", "m2", "b", 6)
    second = selectors.model_quality_scores(capabilities=["code"])
    assert second["m2"] > second["m1"]


def test_the_picker_groups_models_by_provider_and_explains_key_less_ones():
    sim_model("s1", capabilities=["code"])
    keyless_model("gpt-x")
    groups = {g.name: g for g in selectors.model_picker()}
    sim = groups["sim-s1"].models[0]
    assert sim.usable and sim.simulated and sim.capabilities == ["code"]
    keyless = groups["openai-gpt-x"].models[0]
    assert not keyless.usable
    assert "PLAYGROUND_TEST_UNSET_KEY" in keyless.reason


def test_the_picker_shows_override_prices():
    sim_model("priced", input_cost_per_1k="0.5", output_cost_per_1k="1.5")
    option = next(o for g in selectors.model_picker() for o in g.models if o.name == "priced")
    assert (str(option.input_price.normalize()), str(option.output_price.normalize())) == ("0.5", "1.5")


def test_the_picker_leaves_out_disabled_models():
    sim_model("off")
    ModelConfig.objects.filter(name="off").update(enabled=False)
    assert all(o.name != "off" for g in selectors.model_picker() for o in g.models)


@override_settings(ORCHESTRATOR={**settings.ORCHESTRATOR, "RATING_MIN_VOTES": 5})
def test_arena_votes_decide_quality_routing_once_there_are_enough():
    from routing import orchestrator
    from routing.engine.stats import stats_invalidate

    sim_model("ranked-first", capabilities=["code"], quality_rank=1)
    sim_model("voted-best", capabilities=["code"], quality_rank=2)
    stats_invalidate()
    assert orchestrator.select_model(["code"], optimize_for="quality") == "ranked-first"
    _vote_many("ranked-first", "voted-best", "b", 4)
    stats_invalidate()
    assert orchestrator.select_model(["code"], optimize_for="quality") == "ranked-first"  # 4 < 5 votes
    _vote_many("ranked-first", "voted-best", "b", 1)
    stats_invalidate()
    assert orchestrator.select_model(["code"], optimize_for="quality") == "voted-best"


def test_what_a_trace_billed_counts_every_record_of_it():
    from tests.factories import CallRecordFactory

    CallRecordFactory(trace_id="t1", model_name="a", status="error", input_tokens=0, output_tokens=0)
    CallRecordFactory(trace_id="t1", model_name="a", status="cancelled", cost_usd="0.25", output_tokens=7)
    CallRecordFactory(trace_id="t1", model_name="b", role="judge", cost_usd="0.5", input_tokens=3)
    CallRecordFactory(trace_id="t2", cost_usd="9")
    everything = selectors.billed(trace_id="t1")
    assert everything == selectors.Billed(input_tokens=13, output_tokens=27, cost_usd=Decimal("0.75"))
    assert selectors.billed(trace_id="t1", model_name="a").cost_usd == Decimal("0.25")
    assert selectors.billed(trace_id="t1", role="judge").cost_usd == Decimal("0.5")
    assert selectors.billed(trace_id="nothing") is None


def test_what_a_trace_billed_is_unknown_when_a_call_that_used_tokens_has_no_price():
    from tests.factories import CallRecordFactory

    CallRecordFactory(trace_id="t1", cost_usd="0.25")
    CallRecordFactory(trace_id="t1", cost_usd=None, output_tokens=5)
    assert selectors.billed(trace_id="t1").cost_usd is None


def test_the_picker_lists_an_embedding_model_but_it_cannot_be_picked_for_chat():
    sim_model("vectors", capabilities=["embedding"])
    sim_model("chatter", capabilities=["code"])
    options = {o.name: o for g in selectors.model_picker() for o in g.models}
    assert not options["vectors"].usable and options["vectors"].reason == "an embedding model"
    assert options["chatter"].usable
    assert "vectors" not in selectors.usable_model_names()
