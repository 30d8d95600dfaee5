from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from metrics.models import CallRecord, CallRollup, RollupGrain
from tests.factories import ModelConfigFactory, ProviderFactory, TaskRouteFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_drives_the_real_engine_with_backdated_simulated_traffic():
    provider = ProviderFactory(name="sim-zero")  # simulated kind, no latency
    model = ModelConfigFactory(name="sim-a", provider=provider, input_cost_per_1k=1, output_cost_per_1k=2)
    ModelConfigFactory(name="sim-b", provider=provider, input_cost_per_1k=1, output_cost_per_1k=2)
    TaskRouteFactory(task_type="summarize", model=model)
    out = StringIO()
    call_command("simulate_traffic", days=3, requests=40, concurrency=8, seed=5, stdout=out)

    records = list(CallRecord.objects.all())
    assert len(records) >= 40
    assert {r.source for r in records} == {"simulation"}
    assert {r.model_name for r in records} <= {"sim-a", "sim-b"}
    now = timezone.now()
    assert all(now - timedelta(days=3, minutes=1) <= r.created_at <= now for r in records)
    assert max(r.created_at for r in records) - min(r.created_at for r in records) > timedelta(hours=12)
    assert any(r.task_type == "summarize" for r in records)
    rolled = sum(CallRollup.objects.filter(grain=RollupGrain.HOUR).values_list("count", flat=True))
    assert rolled == len(records)
    assert "Rolled up" in out.getvalue()


def test_it_refuses_absurd_arguments():
    with pytest.raises(CommandError):
        call_command("simulate_traffic", days=0, requests=10)
    with pytest.raises(CommandError):
        call_command("simulate_traffic", days=1, requests=10**9)


def test_it_says_what_to_load_when_nothing_is_configured():
    with pytest.raises(CommandError, match="import_config"):
        call_command("simulate_traffic", days=1, requests=1)


def test_every_default_route_has_prompts_its_simulated_models_can_answer():
    from pathlib import Path

    import yaml
    from django.conf import settings

    from dashboards.management.commands.simulate_traffic import CHAT, PROMPTS
    from routing.providers.simulated import simulated_answer, task_from_messages
    from routing.providers.simulated.options import SimulatedOptions, profile_for

    defaults = yaml.safe_load((Path(settings.BASE_DIR) / "config" / "defaults.yaml").read_text())
    routes = {r["task_type"]: r for r in defaults["routes"]}
    expected_skill = {
        "classification": "classification",
        "code_review": "code_generation",
        "summarization": "summarization",
        "complex_reasoning": "reasoning",
        "sql_generation": "code_generation",
    }
    assert set(PROMPTS) == set(routes) == set(expected_skill)
    profile = profile_for(SimulatedOptions(), "sim-smart")
    for task_type, prompts in PROMPTS.items():
        for prompt in prompts:
            messages = [
                {"role": "system", "content": routes[task_type]["system_prompt"]},
                {"role": "user", "content": prompt},
            ]
            assert (
                simulated_answer(task_from_messages(messages), profile).skill == expected_skill[task_type]
            ), prompt
    assert {
        simulated_answer(task_from_messages([{"role": "user", "content": p}]), profile).skill for p in CHAT
    } >= {
        "math",
        "knowledge",
        "code_generation",
        "classification",
        "json",
        "reasoning",
    }
