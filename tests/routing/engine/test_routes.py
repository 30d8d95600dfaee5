"""Task routes: processors, prompt versions and per-model variants, the route's chain."""

import json

import pytest
from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from routing.errors import AllAttemptsFailed, InvalidRequest, UnknownRoute
from routing.models import Capability, PromptVariant, PromptVersion
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply

SQL_FENCED = "```sql\nSELECT name, SUM(amount) AS total FROM orders GROUP BY name ORDER BY total\n```"


@pytest.fixture
def models(fake_provider, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0}
    return fake_provider.model("writer"), fake_provider.model("backup", kind="anthropic")


def route_for(model, **fields):
    return TaskRouteFactory(task_type=fields.pop("task_type", "task"), model=model, **fields)


def system_prompt_sent(request):
    body = request.body
    if request.wire == "anthropic":
        return body.get("system")
    return next((m["content"] for m in body["messages"] if m["role"] == "system"), None)


def test_strip_code_fences_keeps_the_last_letter_the_seed_ate(fake_provider, models):
    route_for(models[0], postprocessor="strip_code_fences")
    fake_provider.script("writer", Reply.ok(SQL_FENCED))

    result = orchestrator.route("task", "Top customers by revenue")

    assert result.text.endswith("ORDER BY total")
    assert result.text.startswith("SELECT")
    assert result.raw_text == SQL_FENCED


def test_json_reemits_valid_json(fake_provider, models):
    route_for(models[0], postprocessor="json")
    fake_provider.script("writer", Reply.ok('```json\n{"a": 1,  "b": [1, 2]}\n```'))

    assert json.loads(orchestrator.route("task", "give json").text) == {"a": 1, "b": [1, 2]}


def test_invalid_json_moves_the_chain_on_to_the_next_model(fake_provider, models):
    writer, backup = models
    route_for(writer, postprocessor="json", fallback_chain=FallbackChainFactory(name="c", models=[backup]))
    fake_provider.script("writer", Reply.ok("Sure! Here is the JSON: {oops"))
    fake_provider.script("backup", Reply.ok('{"ok": true}'))

    result = orchestrator.route("task", "give json")

    assert result.model == "backup"
    assert result.text == '{"ok":true}'
    rejected = CallRecord.objects.get(model_name="writer")
    assert (rejected.status, rejected.error_class) == ("error", "model_permanent")
    assert "not valid JSON" in rejected.error_message
    assert rejected.response_text == "Sure! Here is the JSON: {oops"


def test_invalid_json_with_no_chain_left_fails_with_every_attempt(fake_provider, models):
    route_for(models[0], postprocessor="json")
    fake_provider.script("writer", Reply.ok("not json"))

    with pytest.raises(AllAttemptsFailed) as caught:
        orchestrator.route("task", "give json")

    assert caught.value.attempts[0].error_class == "model_permanent"


def test_first_line_and_strip(fake_provider, models):
    route_for(models[0], task_type="one", postprocessor="first_line")
    route_for(models[0], task_type="two", postprocessor="strip")
    fake_provider.script("writer", Reply.ok("\n  Positive  \nbecause reasons"), Reply.ok("  padded  \n"))

    assert orchestrator.route("one", "classify").text == "Positive"
    assert orchestrator.route("two", "pad").text == "padded"


def test_label_matches_one_of_the_allowed_labels(fake_provider, models):
    route_for(models[0], postprocessor="label")
    fake_provider.script("writer", Reply.ok("The category is: Billing."))

    result = orchestrator.route("task", "my invoice", processor_options={"labels": ["Billing", "Support"]})

    assert result.text == "Billing"


def test_the_preprocessor_runs_on_the_content_before_it_is_sent(fake_provider, models):
    route_for(models[0], preprocessor="strip")

    orchestrator.route("task", "   hello   ")

    assert fake_provider.requests_for("writer")[0].body["messages"][-1]["content"] == "hello"


def test_the_active_prompt_version_is_sent_and_recorded(fake_provider, models):
    route = route_for(models[0])
    PromptVersion.objects.create(route=route, version=1, system_prompt="old prompt")
    v2 = PromptVersion.objects.create(route=route, version=2, system_prompt="You review code.")
    route.active_prompt = v2
    route.save()

    result = orchestrator.route("task", "def f(): pass")

    assert system_prompt_sent(fake_provider.requests_for("writer")[0]) == "You review code."
    assert result.prompt_version_id == v2.id
    record = CallRecord.objects.get()
    assert record.prompt_version_id == v2.id
    assert record.route_id == route.id
    assert record.task_type == "task"


def test_a_per_model_variant_replaces_the_prompt_for_that_model_only(fake_provider, models):
    writer, backup = models
    route = route_for(writer, fallback_chain=FallbackChainFactory(name="c", models=[backup]))
    default = PromptVersion.objects.create(route=route, version=1, system_prompt="default prompt")
    variant = PromptVersion.objects.create(
        route=route, model=backup, version=1, system_prompt="claude prompt"
    )
    route.active_prompt = default
    route.save()
    PromptVariant.objects.create(route=route, model=backup, active_prompt=variant)
    fake_provider.script("writer", Reply.unauthorized())

    result = orchestrator.route("task", "hello")

    assert system_prompt_sent(fake_provider.requests_for("writer")[0]) == "default prompt"
    assert system_prompt_sent(fake_provider.requests_for("backup")[0]) == "claude prompt"
    assert result.prompt_version_id == variant.id
    assert {r.model_name: r.prompt_version_id for r in CallRecord.objects.all()} == {
        "writer": default.id,
        "backup": variant.id,
    }


def test_a_route_without_a_model_selects_by_its_capabilities(fake_provider):
    fake_provider.model("coder", capabilities=["code"], quality_rank=1)
    fake_provider.model("chatter", capabilities=["chat"], quality_rank=1)
    route = TaskRouteFactory(task_type="review", optimize_for="quality")
    route.capabilities.add(Capability.objects.get(slug="code"))

    assert orchestrator.route("review", "look at this").model == "coder"


def test_an_unknown_task_type_is_named(models):
    route_for(models[0], task_type="known")

    with pytest.raises(UnknownRoute, match="'nope'.*known"):
        orchestrator.route("nope", "x")


def test_a_disabled_route_is_refused(models):
    route_for(models[0], enabled=False)

    with pytest.raises(UnknownRoute, match="disabled"):
        orchestrator.route("task", "x")


def test_empty_content_is_refused_before_anything_is_sent(fake_provider, models):
    route_for(models[0])

    with pytest.raises(InvalidRequest):
        orchestrator.route("task", "   ")

    assert fake_provider.history == []
    assert CallRecord.objects.count() == 0


def test_a_preprocessor_rejecting_the_input_is_an_invalid_request(fake_provider, models):
    route_for(models[0], preprocessor="json")

    with pytest.raises(InvalidRequest, match="Pre-processor 'json' rejected the input"):
        orchestrator.route("task", "{not json")

    assert fake_provider.history == []


def test_a_rejected_answer_does_not_count_against_the_models_circuit(fake_provider, models, settings):
    from routing.engine.breaker import breaker_states

    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "BREAKER_FAILURES": 1}
    route_for(models[0], postprocessor="json")
    fake_provider.script("writer", Reply.ok("not json"))

    with pytest.raises(AllAttemptsFailed):
        orchestrator.route("task", "give json")

    assert "writer" not in breaker_states()


def test_a_route_result_names_its_main_model_skipped_for_a_missing_key(fake_provider, models, monkeypatch):
    monkeypatch.delenv("LOCKED_KEY", raising=False)
    locked = fake_provider.model(
        "gpt-locked", provider=fake_provider.provider(name="locked-p", api_key_env="LOCKED_KEY")
    )
    route_for(
        locked, task_type="triage", fallback_chain=FallbackChainFactory(name="spare", models=[models[1]])
    )

    result = orchestrator.route("triage", "Which queue?")

    assert result.model == "backup"
    assert [a.model for a in result.attempts] == ["backup"]
    assert [s.to_dict() for s in result.skipped] == [
        {
            "model": "gpt-locked",
            "category": "key",
            "reason": "provider locked-p needs its key: set LOCKED_KEY",
            "chain_step": None,
        }
    ]


def test_a_streamed_route_reports_the_skip_with_the_next_attempt(fake_provider, models, monkeypatch):
    monkeypatch.delenv("LOCKED_KEY", raising=False)
    locked = fake_provider.model(
        "gpt-locked", provider=fake_provider.provider(name="locked-p", api_key_env="LOCKED_KEY")
    )
    route_for(
        locked, task_type="triage", fallback_chain=FallbackChainFactory(name="spare", models=[models[1]])
    )

    async def run():
        return [e async for e in orchestrator.astream(task_type="triage", content="Which queue?")]

    events = async_to_sync(run)()

    first = next(e for e in events if e.kind == "attempt")
    assert first.model == "backup"
    assert [(s.model, s.category) for s in first.skipped] == [("gpt-locked", "key")]
    assert all(not e.skipped for e in events if e is not first)
    assert [s.model for s in events[-1].result.skipped] == ["gpt-locked"]
