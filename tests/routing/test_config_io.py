"""Config as code: import validates the whole file then applies it atomically; export round-trips."""

import textwrap
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from routing.config_io import ConfigImportError, config_export, config_import
from routing.models import (
    Capability,
    ChainStep,
    FallbackChain,
    ModelConfig,
    PromptVariant,
    PromptVersion,
    Provider,
    TaskRoute,
)
from tests.factories import FallbackChainFactory, ModelConfigFactory

pytestmark = pytest.mark.django_db

DEFAULTS = Path(settings.BASE_DIR) / "config" / "defaults.yaml"

VALID = textwrap.dedent(
    """
    providers:
      - name: sim
        kind: simulated
        options: {latency_ms_mean: 0}
      - name: oa
        kind: openai
        api_key_env: OPENAI_API_KEY
    models:
      - name: small
        provider: sim
        model_id: small-1
        capabilities: [summarization, classification]
        context_window: 8000
        input_cost_per_1k: 0.0001
        output_cost_per_1k: 0.0002
      - name: big
        provider: oa
        model_id: gpt-4o
        capabilities: [reasoning]
        context_window: 128000
        latency_ms: 800
    routes:
      - task_type: summarize
        capabilities: [summarization]
        optimize_for: latency
        fallback_chain: main
        system_prompt: |
          Summarise.
          Be brief.
        prompt_variants:
          big: Summarise for a big model.
      - task_type: think
        model: big
        system_prompt: Think.
        postprocessor: strip_code_fences
    chains:
      - name: main
        models:
          - big
          - {model: small, timeout_s: 5}
    """
)


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Provider, Capability, ModelConfig, FallbackChain, ChainStep, TaskRoute, PromptVersion)
    }


def import_errors(text: str) -> list[str]:
    with pytest.raises(ConfigImportError) as exc:
        config_import(text=text)
    return exc.value.errors


def test_a_valid_file_creates_everything_it_names():
    report = config_import(text=VALID)
    assert report.count("create") == report.changed == 2 + 3 + 2 + 2 + 1
    small = ModelConfig.objects.get(name="small")
    assert small.provider.name == "sim"
    assert sorted(c.slug for c in small.capabilities.all()) == ["classification", "summarization"]
    assert small.input_cost_per_1k == Decimal("0.0001")
    chain = FallbackChain.objects.get(name="main")
    assert [(s.model.name, s.timeout_s) for s in chain.steps.order_by("position")] == [
        ("big", None),
        ("small", 5.0),
    ]
    summarize = TaskRoute.objects.get(task_type="summarize")
    assert summarize.active_prompt.system_prompt == "Summarise.\nBe brief."
    assert summarize.fallback_chain == chain and summarize.optimize_for == "latency"
    variant = PromptVariant.objects.get(route=summarize)
    assert variant.model.name == "big" and variant.active_prompt.system_prompt == "Summarise for a big model."


def test_importing_the_same_file_twice_changes_nothing():
    config_import(text=VALID)
    history = (ModelConfig.history.count(), TaskRoute.history.count(), ChainStep.history.count())
    before = counts()
    report = config_import(text=VALID)
    assert report.changed == 0
    assert report.count("unchanged") == len(report.items)
    assert counts() == before
    assert (ModelConfig.history.count(), TaskRoute.history.count(), ChainStep.history.count()) == history


def test_a_changed_prompt_makes_a_new_version_and_the_report_names_the_field():
    config_import(text=VALID)
    report = config_import(text=VALID.replace("Think.", "Think harder."))
    updated = [item for item in report.items if item.action == "update"]
    assert [(i.section, i.name, i.changed) for i in updated] == [("routes", "think", ["system_prompt"])]
    route = TaskRoute.objects.get(task_type="think")
    assert route.active_prompt.version == 2
    assert route.active_prompt.system_prompt == "Think harder."


def test_a_variant_left_out_of_the_file_is_removed():
    config_import(text=VALID)
    config_import(text=VALID.replace("    prompt_variants:\n      big: Summarise for a big model.\n", ""))
    assert not PromptVariant.objects.exists()


def test_dry_run_reports_the_plan_and_writes_nothing():
    before = counts()
    report = config_import(text=VALID, dry_run=True)
    assert counts() == before
    assert report.dry_run and report.count("create") == 10
    assert "would be created" in report.summary() and "nothing was written" in report.summary()


def test_dry_run_of_a_change_lists_update_and_unchanged():
    config_import(text=VALID)
    report = config_import(text=VALID.replace("latency_ms: 800", "latency_ms: 900"), dry_run=True)
    assert ModelConfig.objects.get(name="big").latency_ms == 800
    described = {item.describe() for item in report.items}
    assert "models: big: update (latency_ms)" in described
    assert "models: small: unchanged" in described


def test_invalid_yaml_names_the_line():
    errors = import_errors("providers:\n  - name: x\n   kind: [oops\n")
    assert len(errors) == 1 and errors[0].startswith("Invalid YAML at line ")


def test_a_section_given_twice_is_refused_with_its_line_instead_of_dropping_the_first():
    errors = import_errors(
        "providers:\n  - {name: a, kind: simulated}\nproviders:\n  - {name: b, kind: simulated}\n"
    )
    assert errors == ["Invalid YAML at line 3, column 1: the key 'providers' is given twice."]
    assert not Provider.objects.exists()


def test_a_field_given_twice_in_one_entry_is_refused():
    errors = import_errors("providers:\n  - name: a\n    kind: simulated\n    name: b\n")
    assert errors == ["Invalid YAML at line 4, column 5: the key 'name' is given twice."]


def test_yaml_merge_keys_may_still_be_overridden():
    from routing.config_io.validation import load_yaml

    assert load_yaml("a: &x {k: 1, j: 1}\nb:\n  <<: *x\n  k: 2\n") == {
        "a": {"k": 1, "j": 1},
        "b": {"k": 2, "j": 1},
    }


def test_a_file_that_is_not_a_mapping_is_refused():
    assert import_errors("- just\n- a list\n")[0].startswith("The file must be a mapping")


def test_an_unknown_provider_kind_names_the_entry_and_field():
    errors = import_errors("providers:\n  - {name: az, kind: azure}\n")
    assert errors[0].startswith("providers[0] (az): kind: Input should be 'openai', 'azure_openai'")


def test_a_model_naming_an_undefined_provider_is_refused():
    text = VALID.replace("provider: oa", "provider: azure")
    assert "models[1] (big): provider 'azure' is not defined (add it under providers; known: oa, sim)" in (
        import_errors(text)
    )


def test_a_route_naming_a_missing_model_is_refused():
    errors = import_errors(VALID.replace("model: big", "model: huge"))
    assert "routes[1] (think): model: model 'huge' is not defined (add it under models)" in errors


def test_a_duplicate_name_is_refused():
    text = VALID.replace("  - name: big\n", "  - name: small\n")
    assert "models[1] (small): duplicate name: models[0] already uses it" in import_errors(text)


def test_wrong_types_are_refused_with_the_field():
    errors = import_errors(VALID.replace("context_window: 8000", 'context_window: "8000"'))
    assert errors == ["models[0] (small): context_window: Input should be a valid integer"]


def test_an_unknown_key_is_refused():
    errors = import_errors(VALID.replace("latency_ms: 800", "latency: 800"))
    assert errors == ["models[1] (big): latency: unknown key (check the spelling; see docs/configuration.md)"]


def test_an_unknown_section_is_refused():
    assert import_errors("modles: []\n")[0].startswith("modles: unknown section")


def test_field_rules_of_the_models_apply_to_the_file():
    text = VALID.replace("input_cost_per_1k: 0.0001", "input_cost_per_1k: -1")
    text = text.replace("options: {latency_ms_mean: 0}", "options: {failure_rate: 3}")
    errors = import_errors(text)
    assert "models[0] (small): input_cost_per_1k: A price cannot be below zero." in errors
    assert any(e.startswith("providers[0] (sim): options: failure_rate:") for e in errors)


def test_a_chain_with_a_disabled_model_is_refused():
    text = VALID.replace("    latency_ms: 800\n", "    latency_ms: 800\n    enabled: false\n")
    errors = import_errors(text)
    assert "chains[0] (main): models[0]: model 'big' is disabled: enable it or pick another model" in errors
    assert "routes[1] (think): model: model 'big' is disabled: enable it or pick another model" in errors


def test_disabling_a_model_used_by_a_chain_only_in_the_database_is_refused():
    model = ModelConfigFactory(name="legacy")
    FallbackChainFactory(name="old", models=[model])
    text = (
        "providers: [{name: sim, kind: simulated}]\n"
        "models: [{name: legacy, provider: sim, model_id: l, context_window: 10, enabled: false}]\n"
    )
    assert import_errors(text) == [
        "models[0] (legacy): enabled: legacy is used by chain old (in the database): "
        "remove it there first, or keep it enabled"
    ]


EMBEDDING_CHAIN = textwrap.dedent(
    """
    providers: [{name: sim, kind: simulated}]
    models:
      - {name: e-small, provider: sim, model_id: a, context_window: 8191, capabilities: [embedding], embedding_dimensions: 1536}
      - {name: e-large, provider: sim, model_id: b, context_window: 8191, capabilities: [embedding], embedding_dimensions: 3072}
      - {name: chat, provider: sim, model_id: c, context_window: 8191}
    chains:
      - {name: vectors, models: [e-small, e-large]}
    """
)


def test_a_chain_of_embedding_models_of_two_dimensions_is_refused():
    errors = import_errors(EMBEDDING_CHAIN)
    assert len(errors) == 1
    assert errors[0].startswith("chains[0] (vectors): models: The embedding models of a chain must have one")
    assert "e-small (1536), e-large (3072)" in errors[0]


def test_a_chain_mixing_chat_and_embedding_models_is_refused():
    errors = import_errors(EMBEDDING_CHAIN.replace("[e-small, e-large]", "[e-small, chat]"))
    assert errors == [
        "chains[0] (vectors): models: A chain holds chat models or embedding models, not both: "
        "e-small is an embedding model, chat is not."
    ]


def test_a_chain_of_embedding_models_of_one_dimension_imports_and_exports_its_dimensions():
    config_import(text=EMBEDDING_CHAIN.replace("embedding_dimensions: 3072", "embedding_dimensions: 1536"))
    assert ModelConfig.objects.get(name="e-large").embedding_dimensions == 1536
    assert "embedding_dimensions: 1536" in config_export()


def test_a_route_with_neither_model_nor_capabilities_is_refused():
    text = "routes: [{task_type: bare, system_prompt: hi}]\n"
    assert import_errors(text)[0].startswith("routes[0] (bare): Pick a fixed model, or the capabilities")


def test_every_problem_is_reported_at_once():
    text = VALID.replace("provider: oa", "provider: azure").replace("model: big", "model: huge")
    assert len(import_errors(text)) >= 2


def test_a_failing_later_entry_leaves_earlier_ones_unapplied():
    before = counts()
    text = VALID.replace("fallback_chain: main", "fallback_chain: nowhere")
    errors = import_errors(text)
    assert errors == [
        "routes[0] (summarize): fallback_chain: chain 'nowhere' is not defined (add it under chains)"
    ]
    assert counts() == before


def test_references_may_point_at_entries_already_in_the_database():
    config_import(text=VALID)
    config_import(text="routes: [{task_type: extra, model: small, fallback_chain: main}]\n")
    assert TaskRoute.objects.get(task_type="extra").model.name == "small"


def test_export_then_import_then_export_is_byte_identical():
    config_import(text=DEFAULTS.read_text())
    route = TaskRoute.objects.get(task_type="code_review")
    config_import(
        text=config_export().replace(
            "  - task_type: code_review\n",
            "  - task_type: code_review\n    prompt_variants:\n      gpt-4o: |-\n        Review it.\n        Twice.\n",
        )
    )
    assert PromptVariant.objects.filter(route=route).count() == 1
    first = config_export()
    report = config_import(text=first)
    assert report.changed == 0
    assert config_export() == first


def test_the_export_is_readable_and_holds_no_secrets(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "not-a-real-secret-value")
    config_import(text=DEFAULTS.read_text())
    text = config_export()
    assert "not-a-real-secret-value" not in text
    assert "api_key_env: ANTHROPIC_API_KEY" in text
    assert "system_prompt: |-\n      You are a senior software engineer reviewing code.\n" in text
    assert "api_version: '2024-10-21'" in text
    assert text.index("providers:") < text.index("models:") < text.index("routes:") < text.index("chains:")


def test_the_defaults_import_cleanly_and_serve_without_keys():
    report = config_import(text=DEFAULTS.read_text())
    assert report.changed == len(report.items)
    assert set(Capability.objects.values_list("slug", flat=True)) == {
        "code_generation",
        "reasoning",
        "classification",
        "summarization",
        "math",
        "vision",
        "long_context",
        "tool_use",
        "embedding",
    }
    seed = {m.name: m for m in ModelConfig.objects.select_related("provider")}
    assert (
        seed["text-embedding-3-small"].embedding_dimensions == 1536 == seed["sim-embed"].embedding_dimensions
    )
    assert seed["claude-3.5-sonnet"].model_id == "claude-3-5-sonnet-20240620"
    assert seed["gpt-4o"].input_cost_per_1k == Decimal("0.005")
    assert seed["gpt-4o-mini"].context_window == 128000
    simulated = {name for name, m in seed.items() if m.provider.kind == "simulated"}
    covered = {c.slug for m in simulated for c in seed[m].capabilities.all()}
    assert covered == set(Capability.objects.values_list("slug", flat=True))
    routes = TaskRoute.objects.select_related("active_prompt", "fallback_chain")
    assert {r.task_type for r in routes} == {
        "code_review",
        "sql_generation",
        "classification",
        "summarization",
        "complex_reasoning",
    }
    for route in routes:
        assert route.active_prompt is not None and route.active_prompt.system_prompt
        last = route.fallback_chain.steps.order_by("-position").first()
        assert last.model.provider.kind == "simulated", route.task_type
    assert TaskRoute.objects.get(task_type="sql_generation").postprocessor == "strip_code_fences"
    assert {"default", "code", "fast"} <= set(FallbackChain.objects.values_list("name", flat=True))
    assert config_import(text=DEFAULTS.read_text()).changed == 0


def test_the_import_command_prints_the_plan_and_fails_with_a_clear_message(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(VALID)
    out = StringIO()
    call_command("import_config", str(good), "--dry-run", stdout=out)
    assert "models: small: create" in out.getvalue()
    assert not ModelConfig.objects.exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: [{name: x, kind: azure}]\n")
    with pytest.raises(CommandError) as exc:
        call_command("import_config", str(bad))
    assert "was rejected (1 problem(s)); nothing was changed" in str(exc.value)
    assert "providers[0] (x): kind:" in str(exc.value)
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_config", str(tmp_path / "missing.yaml"))


def test_the_export_command_writes_a_file_or_standard_output(tmp_path):
    config_import(text=VALID)
    out = StringIO()
    call_command("export_config", stdout=out)
    target = tmp_path / "out.yaml"
    call_command("export_config", str(target), stderr=StringIO())
    assert target.read_text() == out.getvalue() == config_export()


def test_if_empty_loads_only_into_an_empty_configuration(tmp_path):
    path = tmp_path / "defaults.yaml"
    path.write_text(DEFAULTS.read_text())
    call_command("import_config", str(path), "--if-empty", stdout=StringIO())
    assert ModelConfig.objects.filter(name="sim-fast").exists()
    ModelConfig.objects.filter(name="sim-fast").update(latency_ms=999)
    out = StringIO()
    call_command("import_config", str(path), "--if-empty", stdout=out)
    assert "not loaded (--if-empty)" in out.getvalue()
    assert ModelConfig.objects.get(name="sim-fast").latency_ms == 999


def test_a_failure_while_applying_rolls_back_every_earlier_write(monkeypatch):
    """Validation catches bad files first; should a write still fail late, nothing stays applied."""
    from routing.config_io import importer

    real = importer.route_update_prompt
    calls = []

    def fail_on_the_second_route(**kwargs):
        calls.append(kwargs["route"].task_type)
        if kwargs["route"].task_type == "think":
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(importer, "route_update_prompt", fail_on_the_second_route)
    before = counts()
    with pytest.raises(RuntimeError, match="disk full"):
        config_import(text=VALID)
    assert "summarize" in calls  # earlier entries were written inside the transaction…
    assert counts() == before  # …and rolled back with it.


def test_brief_prints_one_summary_line_and_nothing_once_the_config_exists(tmp_path):
    path = tmp_path / "defaults.yaml"
    path.write_text(DEFAULTS.read_text())
    out = StringIO()
    call_command("import_config", str(path), "--if-empty", "--brief", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1 and "created" in lines[0] and str(path) in lines[0]
    again = StringIO()
    call_command("import_config", str(path), "--if-empty", "--brief", stdout=again)
    assert again.getvalue() == ""


def test_a_file_changing_a_model_of_a_chain_only_in_the_database_is_checked_against_it():
    config_import(text=EMBEDDING_CHAIN.replace("embedding_dimensions: 3072", "embedding_dimensions: 1536"))
    text = (
        "providers: [{name: sim, kind: simulated}]\n"
        "models: [{name: e-large, provider: sim, model_id: b, context_window: 8191, "
        "capabilities: [embedding], embedding_dimensions: 768}]\n"
    )
    errors = import_errors(text)
    assert len(errors) == 1
    assert errors[0].startswith("models[0] (e-large): chain vectors (in the database): The embedding models")
