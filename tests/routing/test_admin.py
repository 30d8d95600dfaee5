"""The admin an operator uses: every page renders for staff, others are refused, forms explain."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from routing.config_io import config_import
from routing.models import ChainStep, FallbackChain, ModelConfig, PromptVersion, Provider, TaskRoute
from routing.services import route_update_prompt

pytestmark = pytest.mark.django_db

DEFAULTS = Path(settings.BASE_DIR) / "config" / "defaults.yaml"
REGISTERED = sorted(f"{m._meta.app_label}.{m._meta.model_name}" for m in admin.site._registry)


@pytest.fixture
def seeded(staff_user):
    config_import(text=DEFAULTS.read_text())
    route = TaskRoute.objects.get(task_type="code_review")
    route_update_prompt(
        route=route,
        system_prompt="Review <b>carefully</b>.",
        model=ModelConfig.objects.get(name="gpt-4o"),
        user=staff_user,
    )
    return route


def route_post_data(route: TaskRoute, **overrides) -> dict:
    data = {
        "task_type": route.task_type,
        "description": route.description,
        "enabled": "on",
        "model": route.model_id or "",
        "optimize_for": route.optimize_for,
        "fallback_chain": route.fallback_chain_id or "",
        "system_prompt": route.active_prompt.system_prompt if route.active_prompt else "",
        "prompt_note": "",
        "preprocessor": route.preprocessor,
        "postprocessor": route.postprocessor,
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.mark.parametrize("label", REGISTERED)
def test_every_registered_list_and_change_page_renders_for_staff(staff_client, staff_user, seeded, label):
    model = next(m for m in admin.site._registry if f"{m._meta.app_label}.{m._meta.model_name}" == label)
    app, name = model._meta.app_label, model._meta.model_name
    assert staff_client.get(reverse(f"admin:{app}_{name}_changelist")).status_code == 200
    assert staff_client.get(reverse(f"admin:{app}_{name}_changelist"), {"q": "gpt"}).status_code == 200
    request = RequestFactory().get("/admin/")
    request.user = staff_user
    if admin.site._registry[model].has_add_permission(request):
        assert staff_client.get(reverse(f"admin:{app}_{name}_add")).status_code == 200
    obj = model._default_manager.first()
    if obj is not None:
        assert staff_client.get(reverse(f"admin:{app}_{name}_change", args=[obj.pk])).status_code == 200
        history = f"admin:{app}_{name}_history"
        assert staff_client.get(reverse(history, args=[obj.pk])).status_code == 200


def test_every_routing_list_has_search_and_filters():
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label == "routing":
            assert model_admin.search_fields, model
            assert model_admin.list_filter, model


def test_a_member_without_staff_rights_is_refused(member_client, seeded):
    for url in (
        reverse("admin:routing_modelconfig_changelist"),
        reverse("admin:routing_taskroute_prompts", args=[seeded.pk]),
    ):
        response = member_client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_an_anonymous_visitor_is_sent_to_log_in(client, seeded):
    response = client.get(reverse("admin:routing_taskroute_changelist"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_the_model_list_shows_provider_status_with_the_variable_name(staff_client, seeded, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", "gm-very-secret-value")
    content = staff_client.get(reverse("admin:routing_modelconfig_changelist")).content.decode()
    assert "needs key: set ANTHROPIC_API_KEY" in content
    assert "simulated" in content
    assert "gm-very-secret-value" not in content


def test_the_model_change_page_shows_its_provider_status(staff_client, seeded, monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    model = ModelConfig.objects.get(name="gpt-4o")
    content = staff_client.get(reverse("admin:routing_modelconfig_change", args=[model.pk])).content.decode()
    assert "needs key: set AZURE_OPENAI_API_KEY" in content
    assert 'type="checkbox" name="capabilities"' in content


def test_the_provider_list_names_the_key_variable_but_never_its_value(staff_client, seeded, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-value")
    content = staff_client.get(reverse("admin:routing_provider_changelist")).content.decode()
    assert "ready (OPENAI_API_KEY is set)" in content
    assert "sk-very-secret-value" not in content


def test_list_pages_keep_a_fixed_number_of_queries(staff_client, seeded, django_assert_max_num_queries):
    for name in ("modelconfig", "taskroute", "fallbackchain", "provider", "capability", "promptversion"):
        with django_assert_max_num_queries(12):
            assert staff_client.get(reverse(f"admin:routing_{name}_changelist")).status_code == 200


def test_a_negative_price_is_explained_on_the_model_form(staff_client, seeded):
    model = ModelConfig.objects.get(name="sim-fast")
    response = staff_client.post(
        reverse("admin:routing_modelconfig_change", args=[model.pk]),
        {
            "name": model.name,
            "provider": model.provider_id,
            "model_id": model.model_id,
            "enabled": "on",
            "capabilities": list(model.capabilities.values_list("pk", flat=True)),
            "context_window": 1000,
            "latency_ms": 10,
            "input_cost_per_1k": "-1",
            "output_cost_per_1k": "",
        },
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "A price cannot be below zero." in content
    assert ModelConfig.objects.get(pk=model.pk).input_cost_per_1k == model.input_cost_per_1k


def test_invalid_provider_options_are_explained(staff_client):
    response = staff_client.post(
        reverse("admin:routing_provider_add"),
        {"name": "sim", "kind": "simulated", "enabled": "on", "options": '{"failure_rate": 5}'},
    )
    assert response.status_code == 200
    assert "failure_rate: Input should be less than or equal to 1" in response.content.decode()
    assert not Provider.objects.filter(name="sim").exists()


def test_editing_the_prompt_on_the_route_form_creates_a_version_attributed_to_the_user(
    staff_client, seeded, staff_user
):
    route = TaskRoute.objects.get(task_type="summarization")
    url = reverse("admin:routing_taskroute_change", args=[route.pk])
    response = staff_client.post(url, route_post_data(route, system_prompt="Summarise in one line.\r\n"))
    assert response.status_code == 302
    route.refresh_from_db()
    assert route.active_prompt.version == 2
    assert route.active_prompt.created_by == staff_user
    # Saving again with the same text (as a browser posts it) adds nothing.
    staff_client.post(url, route_post_data(route, system_prompt="Summarise in one line.\r\n"))
    assert PromptVersion.objects.filter(route=route, model=None).count() == 2
    assert TaskRoute.history.filter(id=route.pk).first().history_user == staff_user


def test_the_route_form_explains_a_route_with_neither_model_nor_capabilities(staff_client, seeded):
    route = TaskRoute.objects.get(task_type="summarization")
    response = staff_client.post(
        reverse("admin:routing_taskroute_change", args=[route.pk]), route_post_data(route, model="")
    )
    assert response.status_code == 200
    assert "Pick a fixed model, or the capabilities a model must have" in response.content.decode()


def test_the_prompt_history_shows_an_escaped_diff(staff_client, seeded, staff_user):
    route_update_prompt(
        route=seeded, system_prompt="You are a senior software engineer reviewing code.", user=staff_user
    )
    route_update_prompt(route=seeded, system_prompt="Review <script>x</script> now.", user=staff_user)
    response = staff_client.get(reverse("admin:routing_taskroute_prompts", args=[seeded.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert "<ins>Review &lt;script&gt;x&lt;/script&gt; now.</ins>" in content
    assert "<del>You are a senior software engineer reviewing code.</del>" in content
    assert "<script>x</script>" not in content
    assert "Variant for gpt-4o" in content and "Review &lt;b&gt;carefully&lt;/b&gt;." in content


def test_rollback_by_post_makes_the_version_active(staff_client, seeded, staff_user):
    first = seeded.active_prompt
    route_update_prompt(route=seeded, system_prompt="Newer.", user=staff_user)
    url = reverse("admin:routing_taskroute_prompt_rollback", args=[seeded.pk, first.pk])
    response = staff_client.post(url)
    assert response.status_code == 302
    seeded.refresh_from_db()
    assert seeded.active_prompt == first
    record = TaskRoute.history.filter(id=seeded.pk).first()
    assert record.history_user == staff_user and record.history_change_reason == "Rolled back prompt to v1"


def test_rollback_by_get_is_refused(staff_client, seeded):
    url = reverse("admin:routing_taskroute_prompt_rollback", args=[seeded.pk, seeded.active_prompt_id])
    assert staff_client.get(url).status_code == 405


def test_rollback_is_refused_to_members(member_client, seeded):
    url = reverse("admin:routing_taskroute_prompt_rollback", args=[seeded.pk, seeded.active_prompt_id])
    assert member_client.post(url).status_code == 302
    assert PromptVersion.objects.filter(route=seeded).count() == 2


def test_a_variant_can_be_set_and_removed_from_the_history_page(staff_client, seeded):
    model = ModelConfig.objects.get(name="sim-coder")
    url = reverse("admin:routing_taskroute_prompt_variant", args=[seeded.pk])
    assert staff_client.post(url, {"model": model.pk, "system_prompt": "Code only."}).status_code == 302
    assert seeded.variants.get(model=model).active_prompt.system_prompt == "Code only."
    assert staff_client.post(url, {"model": model.pk, "system_prompt": ""}).status_code == 302
    assert not seeded.variants.filter(model=model).exists()
    assert staff_client.get(url).status_code == 405


def test_a_variant_for_an_unknown_model_is_refused_with_the_page(staff_client, seeded):
    url = reverse("admin:routing_taskroute_prompt_variant", args=[seeded.pk])
    response = staff_client.post(url, {"model": 999999, "system_prompt": "x"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def chain_post_data(chain: FallbackChain, rows: list[tuple[int | None, int, int, str]]) -> dict:
    steps = list(chain.steps.order_by("position"))
    data = {
        "name": chain.name,
        "description": chain.description,
        "steps-TOTAL_FORMS": str(len(rows)),
        "steps-INITIAL_FORMS": str(len(steps)),
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for i, (step_id, position, model_id, timeout) in enumerate(rows):
        data.update(
            {
                f"steps-{i}-id": "" if step_id is None else str(step_id),
                f"steps-{i}-chain": str(chain.pk),
                f"steps-{i}-position": str(position),
                f"steps-{i}-model": str(model_id),
                f"steps-{i}-timeout_s": timeout,
            }
        )
    return data


def test_chain_steps_are_reordered_inline(staff_client, seeded):
    chain = FallbackChain.objects.get(name="flaky-demo")
    first, second = chain.steps.order_by("position")
    rows = [(first.pk, 5, first.model_id, "5.0"), (second.pk, 1, second.model_id, "")]
    response = staff_client.post(
        reverse("admin:routing_fallbackchain_change", args=[chain.pk]), chain_post_data(chain, rows)
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert [(s.position, s.model.name) for s in chain.steps.order_by("position")] == [
        (0, "sim-fast"),
        (1, "sim-flaky"),
    ]


def test_a_chain_step_with_a_disabled_model_is_explained(staff_client, seeded):
    disabled = ModelConfig.objects.create(
        name="retired", provider=Provider.objects.get(name="simulated-fast"), model_id="r", enabled=False
    )
    chain = FallbackChain.objects.get(name="flaky-demo")
    rows = [(s.pk, s.position, s.model_id, "") for s in chain.steps.order_by("position")]
    rows.append((None, 9, disabled.pk, ""))
    response = staff_client.post(
        reverse("admin:routing_fallbackchain_change", args=[chain.pk]), chain_post_data(chain, rows)
    )
    assert response.status_code == 200
    assert "Model retired is disabled: enable it or pick another." in response.content.decode()
    assert ChainStep.objects.filter(chain=chain).count() == 2


def test_a_chain_of_embedding_models_of_two_dimensions_is_refused_at_save(staff_client, seeded):
    chain = FallbackChain.objects.get(name="embeddings")
    large = ModelConfig.objects.get(name="text-embedding-3-large")
    rows = [(s.pk, s.position, s.model_id, "") for s in chain.steps.order_by("position")]
    rows.append((None, 9, large.pk, ""))
    response = staff_client.post(
        reverse("admin:routing_fallbackchain_change", args=[chain.pk]), chain_post_data(chain, rows)
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "The embedding models of a chain must have one dimension" in page
    assert "text-embedding-3-large (3072)" in page
    assert ChainStep.objects.filter(chain=chain).count() == 2


def test_a_chain_mixing_chat_and_embedding_models_is_refused_at_save(staff_client, seeded):
    chain = FallbackChain.objects.get(name="embeddings")
    chat = ModelConfig.objects.get(name="sim-fast")
    rows = [(s.pk, s.position, s.model_id, "") for s in chain.steps.order_by("position")]
    rows.append((None, 9, chat.pk, ""))
    response = staff_client.post(
        reverse("admin:routing_fallbackchain_change", args=[chain.pk]), chain_post_data(chain, rows)
    )
    assert response.status_code == 200
    assert "A chain holds chat models or embedding models, not both" in response.content.decode()


def test_prompt_versions_cannot_be_edited_or_deleted_in_the_admin(staff_client, seeded):
    version = seeded.active_prompt
    assert staff_client.get(reverse("admin:routing_promptversion_add")).status_code == 403
    assert (
        staff_client.post(reverse("admin:routing_promptversion_delete", args=[version.pk])).status_code == 403
    )
    response = staff_client.post(
        reverse("admin:routing_promptversion_change", args=[version.pk]), {"system_prompt": "hacked"}
    )
    assert response.status_code == 403
    assert PromptVersion.objects.get(pk=version.pk).system_prompt != "hacked"


def test_a_route_with_prompt_versions_can_be_deleted(staff_client, seeded):
    response = staff_client.post(reverse("admin:routing_taskroute_delete", args=[seeded.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not TaskRoute.objects.filter(pk=seeded.pk).exists()
    assert not PromptVersion.objects.filter(route_id=seeded.pk).exists()


def test_the_audit_trail_records_who_changed_a_model(staff_client, seeded, staff_user):
    model = ModelConfig.objects.get(name="sim-fast")
    data = {
        "name": model.name,
        "provider": model.provider_id,
        "model_id": model.model_id,
        "enabled": "on",
        "capabilities": list(model.capabilities.values_list("pk", flat=True)),
        "context_window": 64000,
        "latency_ms": model.latency_ms,
        "input_cost_per_1k": "0.0001",
        "output_cost_per_1k": "0.0004",
        "quality_rank": "7",
    }
    assert (
        staff_client.post(reverse("admin:routing_modelconfig_change", args=[model.pk]), data).status_code
        == 302
    )
    record = ModelConfig.history.filter(id=model.pk).first()
    assert record.history_user == staff_user and record.context_window == 64000
    page = staff_client.get(reverse("admin:routing_modelconfig_history", args=[model.pk])).content.decode()
    assert "alice" in page and "Context window" in page


def test_a_step_added_in_the_blank_row_goes_last(staff_client, seeded):
    chain = FallbackChain.objects.get(name="flaky-demo")
    rows = [(s.pk, s.position, s.model_id, "") for s in chain.steps.order_by("position")]
    rows.append((None, 100, ModelConfig.objects.get(name="sim-smart").pk, ""))
    url = reverse("admin:routing_fallbackchain_change", args=[chain.pk])
    assert staff_client.post(url, chain_post_data(chain, rows)).status_code == 302
    assert [s.model.name for s in chain.steps.order_by("position")] == ["sim-flaky", "sim-fast", "sim-smart"]
    assert FallbackChain.history.filter(id=chain.pk).first().history_change_reason == (
        "Steps: sim-flaky → sim-fast → sim-smart"
    )


def test_model_pickers_say_which_models_need_a_key(staff_client, seeded, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    chain = FallbackChain.objects.get(name="code")
    content = staff_client.get(
        reverse("admin:routing_fallbackchain_change", args=[chain.pk])
    ).content.decode()
    assert "claude-3.5-sonnet (needs key: set ANTHROPIC_API_KEY)" in content
    assert "sim-fast (simulated)" in content
    model = ModelConfig.objects.get(name="claude-3.5-sonnet")
    page = staff_client.get(reverse("admin:routing_modelconfig_change", args=[model.pk])).content.decode()
    assert "anthropic (needs key: set ANTHROPIC_API_KEY)" in page


AUDITED = sorted(
    f"{m._meta.app_label}.{m._meta.model_name}"
    for m, model_admin in admin.site._registry.items()
    if isinstance(model_admin, SimpleHistoryAdmin)
)


@pytest.mark.parametrize("label", AUDITED)
def test_an_audit_history_for_an_id_that_is_not_a_number_is_not_found(staff_client, label):
    app_label, model_name = label.split(".")
    response = staff_client.get(f"/admin/{app_label}/{model_name}/abc/history/")

    assert response.status_code == 404


def test_the_audit_history_leaves_out_saves_that_changed_nothing_and_shows_empty_values_as_a_dash(
    staff_client, seeded
):
    model = ModelConfig.objects.get(name="sim-fast")
    url = reverse("admin:routing_modelconfig_history", args=[model.pk])
    before = staff_client.get(url).content.decode().count("<td>Changed</td>")
    model.save()  # saves with no change: simple-history still writes a row for each
    model.save()
    assert model.history.count() >= 4
    assert staff_client.get(url).content.decode().count("<td>Changed</td>") == before
    history = staff_client.get(reverse("admin:routing_taskroute_history", args=[seeded.pk])).content.decode()
    assert "pk=None" not in history and "Deleted prompt version" not in history
    assert "<td>None</td>" not in history


def test_the_admin_has_the_apps_navigation(staff_client):
    content = staff_client.get(reverse("admin:index")).content.decode()
    assert 'class="topbar"' in content and 'href="/playground/"' in content and 'href="/docs/"' in content
    assert 'id="nav-sidebar"' not in content


def model_post_data(model: ModelConfig, **overrides) -> dict:
    data = {
        "name": model.name,
        "provider": model.provider_id,
        "model_id": model.model_id,
        "enabled": "on",
        "capabilities": list(model.capabilities.values_list("pk", flat=True)),
        "context_window": model.context_window,
        "latency_ms": model.latency_ms,
        "input_cost_per_1k": model.input_cost_per_1k or "",
        "output_cost_per_1k": model.output_cost_per_1k if model.output_cost_per_1k is not None else "",
        "quality_rank": model.quality_rank or "",
        "embedding_dimensions": model.embedding_dimensions or "",
    }
    data.update(overrides)
    return data


def test_a_model_edit_that_would_give_its_chain_two_dimensions_is_refused(staff_client, seeded):
    model = ModelConfig.objects.get(name="sim-embed")
    url = reverse("admin:routing_modelconfig_change", args=[model.pk])
    response = staff_client.post(url, model_post_data(model, embedding_dimensions="768"))
    assert response.status_code == 200
    assert (
        "Chain embeddings: The embedding models of a chain must have one dimension"
        in response.content.decode()
    )
    assert ModelConfig.objects.get(pk=model.pk).embedding_dimensions == 1536
    # The same dimension saves.
    assert staff_client.post(url, model_post_data(model, latency_ms="60")).status_code == 302


def test_a_model_edit_that_would_make_its_chain_mixed_is_refused(staff_client, seeded):
    model = ModelConfig.objects.get(name="sim-embed")
    url = reverse("admin:routing_modelconfig_change", args=[model.pk])
    response = staff_client.post(url, model_post_data(model, capabilities=[]))
    assert response.status_code == 200
    assert "Chain embeddings: A chain holds chat models or embedding models" in response.content.decode()
