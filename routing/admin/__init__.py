"""The routing admin: what an operator edits. Every change is audited (SimpleHistoryAdmin)."""

from typing import Any

from django.contrib import admin
from django.db.models import Count, Prefetch, QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from routing.admin import config_page, prompts
from routing.admin.audit import AuditedAdmin
from routing.forms import ChainStepForm, ChainStepFormSet, ModelConfigForm, ProviderForm, TaskRouteForm
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
from routing.services import chain_set_steps, route_update_prompt

admin.site.site_header = "Orchestrator configuration"
admin.site.site_title = "Orchestrator"
admin.site.index_title = "Providers, models, routes, prompts and chains"
# The app's top bar (templates/admin/base_site.html) and the index already navigate; a second
# column would squeeze change lists off a 1440 px screen.
admin.site.enable_nav_sidebar = False
admin.site.site_url = "/"


def _status_badge(text: str) -> str:
    colour = "#166534" if text in ("ready", "simulated") or text.startswith("ready") else "#9a3412"
    return format_html('<span style="color:{};font-weight:600">{}</span>', colour, text)


class InUseFilter(admin.SimpleListFilter):
    title = "in use"
    parameter_name = "in_use"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Used by a model or route"), ("no", "Unused")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(used__gt=0)
        if self.value() == "no":
            return queryset.filter(used=0)
        return queryset


@admin.register(Provider)
class ProviderAdmin(AuditedAdmin):
    form = ProviderForm
    list_display = ("name", "kind", "key_status_column", "base_url", "model_count", "enabled")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "base_url", "api_key_env")
    readonly_fields = ("key_status_column", "created_at", "updated_at")
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled"]}),
        ("Connection", {"fields": ["base_url", "api_version", "api_key_env", "key_status_column"]}),
        ("Options", {"fields": ["options"]}),
        ("Audit", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Provider]:
        return super().get_queryset(request).annotate(model_total=Count("models"))

    @admin.display(description="key status")
    def key_status_column(self, obj: Provider) -> str:
        if obj.pk is None:
            return "—"
        text = obj.key_status
        if text == "ready" and obj.api_key_env:
            text = f"ready ({obj.api_key_env} is set)"
        elif text == "ready":
            text = "ready (no key needed)"
        return _status_badge(text)

    @admin.display(description="models", ordering="model_total")
    def model_count(self, obj: Provider) -> int:
        return getattr(obj, "model_total", 0)


@admin.register(Capability)
class CapabilityAdmin(AuditedAdmin):
    list_display = ("slug", "description", "model_count", "route_count")
    list_filter = (InUseFilter,)
    search_fields = ("slug", "description")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Capability]:
        qs = (
            super()
            .get_queryset(request)
            .annotate(model_total=Count("models", distinct=True), route_total=Count("routes", distinct=True))
        )
        return qs.annotate(used=Count("models", distinct=True) + Count("routes", distinct=True))

    @admin.display(description="models", ordering="model_total")
    def model_count(self, obj: Capability) -> int:
        return getattr(obj, "model_total", 0)

    @admin.display(description="routes", ordering="route_total")
    def route_count(self, obj: Capability) -> int:
        return getattr(obj, "route_total", 0)


@admin.register(ModelConfig)
class ModelConfigAdmin(AuditedAdmin):
    form = ModelConfigForm
    list_display = (
        "name",
        "status_column",
        "provider",
        "capability_list",
        "context_window",
        "latency_ms",
        "prices",
        "enabled",
    )
    list_filter = ("enabled", "provider__kind", "provider", "capabilities")
    search_fields = ("name", "model_id", "provider__name")
    list_select_related = ("provider",)
    readonly_fields = ("status_column", "created_at", "updated_at")
    fieldsets = [
        (None, {"fields": ["name", "provider", "status_column", "model_id", "enabled"]}),
        (
            "What it can do",
            {
                "fields": [
                    "capabilities",
                    "context_window",
                    "latency_ms",
                    "quality_rank",
                    "embedding_dimensions",
                ]
            },
        ),
        (
            "Prices (USD per 1K tokens)",
            {
                "fields": ["input_cost_per_1k", "output_cost_per_1k"],
                "description": "Set both to override the bundled price catalogue, or leave both empty.",
            },
        ),
        ("Audit", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelConfig]:
        return super().get_queryset(request).select_related("provider").prefetch_related("capabilities")

    @admin.display(description="capabilities")
    def capability_list(self, obj: ModelConfig) -> str:
        return ", ".join(c.slug for c in obj.capabilities.all()) or "—"

    @admin.display(description="price in / out")
    def prices(self, obj: ModelConfig) -> str:
        if obj.input_cost_per_1k is None or obj.output_cost_per_1k is None:
            return "catalogue"
        return f"{obj.input_cost_per_1k.normalize():f} / {obj.output_cost_per_1k.normalize():f}"

    @admin.display(description="provider status")
    def status_column(self, obj: ModelConfig) -> str:
        if obj.pk is None:
            return "—"
        return _status_badge(obj.status)


class ChainStepInline(admin.TabularInline):
    model = ChainStep
    form = ChainStepForm
    formset = ChainStepFormSet
    fields = ("position", "model", "timeout_s")
    ordering = ("position",)
    extra = 1
    verbose_name = "step"
    verbose_name_plural = "steps (tried in order of position; renumbered 0, 1, 2… on save)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChainStep]:
        return super().get_queryset(request).select_related("model")


@admin.register(FallbackChain)
class FallbackChainAdmin(AuditedAdmin):
    inlines = [ChainStepInline]
    list_display = ("name", "step_list", "route_count", "description")
    list_filter = (("steps__model", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("name", "description", "steps__model__name")
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[FallbackChain]:
        steps = Prefetch("steps", queryset=ChainStep.objects.select_related("model").order_by("position"))
        return (
            super()
            .get_queryset(request)
            .prefetch_related(steps)
            .annotate(route_total=Count("routes", distinct=True))
        )

    @admin.display(description="steps")
    def step_list(self, obj: FallbackChain) -> str:
        return " → ".join(s.model.name for s in obj.steps.all()) or "—"

    @admin.display(description="routes", ordering="route_total")
    def route_count(self, obj: FallbackChain) -> int:
        return getattr(obj, "route_total", 0)

    def save_formset(
        self, request: HttpRequest, form: ModelForm, formset: BaseInlineFormSet, change: bool
    ) -> None:
        if formset.model is not ChainStep:
            super().save_formset(request, form, formset, change)
            return
        kept = [
            (f.cleaned_data["position"] or 0, index, f.cleaned_data["model"], f.cleaned_data.get("timeout_s"))
            for index, f in enumerate(formset.forms)
            if f.cleaned_data and f.cleaned_data.get("model") and not formset._should_delete_form(f)  # type: ignore[attr-defined]
        ]
        kept.sort(key=lambda row: (row[0], row[1]))
        steps = [(model, timeout) for _, _, model, timeout in kept]
        chain_set_steps(chain=form.instance, steps=steps, user=request.user)
        # The admin's change message reads these; the service reports its changes to history.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


@admin.register(TaskRoute)
class TaskRouteAdmin(AuditedAdmin):
    form = TaskRouteForm
    change_form_template = "admin/routing/taskroute/change_form.html"
    list_display = (
        "task_type",
        "target",
        "fallback_chain",
        "prompt_column",
        "preprocessor",
        "postprocessor",
        "enabled",
    )
    list_filter = ("enabled", "optimize_for", "fallback_chain", "model", "capabilities")
    search_fields = ("task_type", "description", "active_prompt__system_prompt")
    list_select_related = ("model", "fallback_chain", "active_prompt")
    readonly_fields = ("prompt_column", "created_at", "updated_at")
    fieldsets = [
        (None, {"fields": ["task_type", "description", "enabled"]}),
        (
            "Which model answers",
            {
                "fields": ["model", "capabilities", "optimize_for", "fallback_chain"],
                "description": "A fixed model, or the capabilities a model must have (then chosen by "
                "optimize_for). The fallback chain is tried when the model fails.",
            },
        ),
        ("System prompt", {"fields": ["prompt_column", "system_prompt", "prompt_note"]}),
        ("Processing", {"fields": ["preprocessor", "postprocessor"]}),
        ("Audit", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskRoute]:
        return (
            super()
            .get_queryset(request)
            .select_related("model", "fallback_chain", "active_prompt")
            .prefetch_related("capabilities")
            .annotate(variant_total=Count("variants", distinct=True))
        )

    @admin.display(description="model / selection")
    def target(self, obj: TaskRoute) -> str:
        if obj.model is not None:
            return obj.model.name
        slugs = " + ".join(c.slug for c in obj.capabilities.all())
        return f"{slugs or '?'} by {obj.optimize_for}"

    @admin.display(description="prompt")
    def prompt_column(self, obj: TaskRoute) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:routing_taskroute_prompts", args=[obj.pk])
        version = f"v{obj.active_prompt.version}" if obj.active_prompt is not None else "none"
        variants = getattr(obj, "variant_total", None)
        if variants is None:
            variants = obj.variants.count()
        extra = f" + {variants} variant(s)" if variants else ""
        return format_html('<a href="{}">{}{} · history</a>', url, version, extra)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        route_update_prompt(
            route=form.instance,
            system_prompt=form.cleaned_data.get("system_prompt") or "",
            user=request.user,
            note=form.cleaned_data.get("prompt_note") or "",
        )

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("config/", view(config_page.import_view(self)), name="routing_config"),
            path("config/export/", view(config_page.export_view(self)), name="routing_config_export"),
            path(
                "<path:object_id>/prompts/",
                view(prompts.history_view(self)),
                name="routing_taskroute_prompts",
            ),
            path(
                "<path:object_id>/prompts/<int:version_id>/rollback/",
                view(prompts.rollback_view(self)),
                name="routing_taskroute_prompt_rollback",
            ),
            path(
                "<path:object_id>/prompts/variant/",
                view(prompts.variant_view(self)),
                name="routing_taskroute_prompt_variant",
            ),
            *super().get_urls(),
        ]


class ReadOnlyMixin:
    """Listed and viewable, never added, edited or deleted from its own pages.

    Deleting the route (or model) that owns rows takes them along: the delete confirmation of
    *another* admin asks this one for permission, and gets it.
    """

    model: Any

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return False
        opts = self.model._meta
        match = request.resolver_match
        own_page = match is not None and (match.url_name or "").startswith(
            f"{opts.app_label}_{opts.model_name}_"
        )
        return not own_page and request.user.has_perm(f"{opts.app_label}.delete_{opts.model_name}")


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Immutable: versions are made by editing a route's prompt and never edited or deleted here."""

    list_display = ("__str__", "route", "model", "version", "first_line", "created_by", "created_at")
    list_filter = ("route", "model", "created_by")
    search_fields = ("system_prompt", "note", "route__task_type")
    list_select_related = ("route", "model", "created_by")
    fields = (
        "route",
        "model",
        "version",
        "system_prompt",
        "note",
        "created_by",
        "created_at",
        "history_link",
    )
    readonly_fields = fields

    @admin.display(description="text")
    def first_line(self, obj: PromptVersion) -> str:
        line = obj.system_prompt.strip().splitlines()[0] if obj.system_prompt.strip() else ""
        return line[:80] + ("…" if len(line) > 80 else "")

    @admin.display(description="route's prompt history")
    def history_link(self, obj: PromptVersion) -> str:
        url = reverse("admin:routing_taskroute_prompts", args=[obj.route_id])
        return format_html('<a href="{}">Prompt history, diffs and rollback</a>', url)


@admin.register(PromptVariant)
class PromptVariantAdmin(ReadOnlyMixin, AuditedAdmin):
    """Which version each per-model variant uses; changed from the route's prompt history page."""

    list_display = ("__str__", "route", "model", "active_prompt")
    list_filter = ("route", "model")
    search_fields = ("route__task_type", "model__name", "active_prompt__system_prompt")
    list_select_related = ("route", "model", "active_prompt", "active_prompt__route", "active_prompt__model")
    fields = ("route", "model", "active_prompt")
    readonly_fields = fields
