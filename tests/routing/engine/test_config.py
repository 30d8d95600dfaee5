"""The config snapshot: read once, reused without queries, reloaded when the version moves."""

from django.core.cache import cache

from routing import orchestrator
from routing.engine import config
from routing.models import ModelConfig
from tests.routing.engine.conftest import simulated_model


def test_calls_reuse_the_snapshot_without_touching_the_database(django_assert_num_queries):
    simulated_model("a", capabilities=["chat"])
    orchestrator.select_model(["chat"])  # loads the snapshot

    with django_assert_num_queries(0):
        assert orchestrator.select_model(["chat"]) == "a"


def test_a_change_another_process_announces_is_picked_up_after_the_check_interval(monkeypatch):
    simulated_model("a", capabilities=["chat"], input_cost_per_1k=0, output_cost_per_1k=0)
    simulated_model("b", capabilities=["chat"], input_cost_per_1k=1, output_cost_per_1k=1)
    assert orchestrator.select_model(["chat"]) == "a"

    # Another process saves a change: the rows change (no signal here) and the version moves.
    ModelConfig.objects.filter(name="a").update(enabled=False)
    cache.set(config.VERSION_KEY, "changed-elsewhere", timeout=None)
    assert orchestrator.select_model(["chat"]) == "a"  # within the check interval: cached

    monkeypatch.setattr(config, "CHECK_INTERVAL_S", 0)
    assert orchestrator.select_model(["chat"]) == "b"


def test_saving_a_model_invalidates_at_once_in_this_process():
    model = simulated_model("a", capabilities=["chat"], context_window=100)
    orchestrator.select_model(["chat"])

    model.context_window = 50_000
    model.save()

    assert orchestrator.select_model(["chat"], tokens_needed=10_000) == "a"
