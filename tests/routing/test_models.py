"""The models' rules: clean() messages say what to fix; key status never shows a secret."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from routing.forms import ModelConfigForm, TaskRouteForm
from routing.models import ChainStep, ModelConfig, Provider, ProviderKind, TaskRoute, route_target_errors
from tests.factories import (
    CapabilityFactory,
    FallbackChainFactory,
    ModelConfigFactory,
    ProviderFactory,
    TaskRouteFactory,
)

pytestmark = pytest.mark.django_db


def errors_of(instance, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as exc:
        instance.full_clean(**kwargs)
    return exc.value.message_dict


def test_a_model_with_only_one_price_names_the_missing_one():
    model = ModelConfigFactory.build(provider=ProviderFactory(), input_cost_per_1k=Decimal("0.001"))
    errors = errors_of(model)
    assert errors["output_cost_per_1k"] == [
        "Set both the input and the output price, or leave both empty to use the price catalogue."
    ]


def test_a_price_below_zero_is_refused():
    model = ModelConfigFactory.build(
        provider=ProviderFactory(), input_cost_per_1k=Decimal("-0.1"), output_cost_per_1k=Decimal("0.1")
    )
    assert errors_of(model)["input_cost_per_1k"] == ["A price cannot be below zero."]


@pytest.mark.parametrize("prices", [(None, None), (Decimal("0"), Decimal("0.002"))])
def test_a_model_with_both_prices_or_neither_is_valid(prices):
    model = ModelConfigFactory.build(
        provider=ProviderFactory(), input_cost_per_1k=prices[0], output_cost_per_1k=prices[1]
    )

    model.full_clean()  # raises ValidationError when invalid
    model.save()

    stored = ModelConfig.objects.get(pk=model.pk)
    assert (stored.input_cost_per_1k, stored.output_cost_per_1k) == prices


def test_azure_needs_its_endpoint_and_api_version():
    provider = Provider(name="az", kind=ProviderKind.AZURE_OPENAI, api_key_env="AZURE_OPENAI_API_KEY")
    errors = errors_of(provider)
    assert errors["base_url"] == ["Azure OpenAI needs its endpoint URL."]
    assert errors["api_version"] == ["Azure OpenAI needs an API version, e.g. 2024-10-21."]


def test_provider_options_are_validated_by_the_kind_schema():
    provider = Provider(name="sim", kind=ProviderKind.SIMULATED, options={"failure_rate": 2, "colour": "red"})
    messages = errors_of(provider)["options"]
    assert any(m.startswith("failure_rate:") and "less than or equal to 1" in m for m in messages)
    assert any(m.startswith("colour:") and "Extra inputs are not permitted" in m for m in messages)


def test_the_key_variable_must_look_like_an_environment_variable():
    provider = Provider(name="oa", kind=ProviderKind.OPENAI, api_key_env="sk-abc123")
    assert "api_key_env" in errors_of(provider)


def test_key_status_names_the_variable_and_never_its_value(monkeypatch):
    provider = Provider(name="oa", kind=ProviderKind.OPENAI, api_key_env="OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert provider.needs_key
    assert provider.key_status == "needs key: set OPENAI_API_KEY"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    assert not provider.needs_key
    assert provider.key_status == "ready"


def test_simulated_and_keyless_local_providers_need_no_key():
    assert Provider(kind=ProviderKind.SIMULATED).key_status == "simulated"
    ollama = Provider(kind=ProviderKind.OPENAI_COMPATIBLE, base_url="http://127.0.0.1:11434/v1")
    assert ollama.key_status == "ready"


def test_a_models_status_reports_disabled_before_keys(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    provider = ProviderFactory(name="anthropic", kind=ProviderKind.ANTHROPIC, api_key_env="ANTHROPIC_API_KEY")
    model = ModelConfigFactory(provider=provider)
    assert model.status == "needs key: set ANTHROPIC_API_KEY"
    model.enabled = False
    assert model.status == "disabled"
    model.enabled = True
    provider.enabled = False
    assert model.status == "provider disabled"


def test_a_chain_step_with_a_disabled_model_says_what_to_do():
    model = ModelConfigFactory(name="old-model", enabled=False)
    step = ChainStep(chain=FallbackChainFactory(), position=0, model=model)
    assert errors_of(step)["model"] == ["Model old-model is disabled: enable it or pick another."]


def test_a_route_with_an_unknown_processor_lists_the_known_ones():
    route = TaskRoute(task_type="t", postprocessor="nope")
    message = errors_of(route)["postprocessor"][0]
    assert message.startswith("Unknown processor 'nope'. Known: ")
    assert "strip_code_fences" in message


def test_a_route_on_a_disabled_model_is_refused():
    route = TaskRoute(task_type="t", model=ModelConfigFactory(name="gone", enabled=False))
    assert errors_of(route)["model"] == ["Model gone is disabled: enable it or pick another model."]


def test_a_route_needs_a_model_or_capabilities_but_not_both():
    assert route_target_errors(has_model=False, capability_count=0)[0].startswith("Pick a fixed model")
    assert route_target_errors(has_model=True, capability_count=2)[0].startswith("Pick either")
    assert route_target_errors(has_model=True, capability_count=0) == []
    assert route_target_errors(has_model=False, capability_count=1) == []


def test_the_route_form_refuses_neither_model_nor_capabilities():
    form = TaskRouteForm(data={"task_type": "x", "optimize_for": "cost", "enabled": "on"})
    assert not form.is_valid()
    assert form.non_field_errors()[0].startswith("Pick a fixed model, or the capabilities")


def test_the_route_form_accepts_a_capability_selection():
    capability = CapabilityFactory(slug="math")
    form = TaskRouteForm(
        data={"task_type": "x", "optimize_for": "latency", "capabilities": [capability.pk], "enabled": "on"}
    )
    assert form.is_valid(), form.errors


def test_disabling_a_model_that_a_chain_uses_names_the_chain():
    model = ModelConfigFactory(name="m1")
    FallbackChainFactory(name="default", models=[model])
    TaskRouteFactory(task_type="summarise", model=model)
    data = {
        "name": "m1",
        "provider": model.provider_id,
        "model_id": "m1",
        "context_window": 1000,
        "latency_ms": 100,
    }
    form = ModelConfigForm(data=data, instance=ModelConfig.objects.get(pk=model.pk))
    assert not form.is_valid()
    assert form.errors["enabled"] == [
        "m1 is used by chain default, route summarise: remove it there first, or keep it enabled."
    ]
