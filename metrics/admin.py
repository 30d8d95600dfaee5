"""Read-only admin for call records and rollups: records are written by the engine only."""

from decimal import Decimal

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from metrics.models import CallRecord, CallRollup


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(CallRecord)
class CallRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "model_name",
        "task_type",
        "source",
        "attempt",
        "status",
        "latency",
        "tokens",
        "cost",
        "trace_short",
    )
    list_filter = ("status", "source", "error_class", "simulated", "provider_kind")
    search_fields = ("=trace_id", "model_name", "task_type", "error_message")
    show_full_result_count = False  # no COUNT(*) over millions of rows per page
    list_per_page = 50
    ordering = ("-created_at", "-id")
    raw_id_fields = ("route", "prompt_version", "model", "api_key")

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, obj: CallRecord) -> str:
        return "—" if obj.latency_ms is None else f"{obj.latency_ms:,.0f} ms"

    @admin.display(description="tokens in / out")
    def tokens(self, obj: CallRecord) -> str:
        return f"{obj.input_tokens:,} / {obj.output_tokens:,}"

    @admin.display(description="cost", ordering="cost_usd")
    def cost(self, obj: CallRecord) -> str:
        if obj.cost_usd is None:
            return "—"
        return f"${obj.cost_usd:.4f}" if obj.cost_usd >= Decimal("0.01") else f"${obj.cost_usd:.6f}"

    @admin.display(description="trace")
    def trace_short(self, obj: CallRecord) -> str:
        """The trace's first 8 characters, linking to the call's page with its waterfall."""
        return format_html(
            '<a href="{}" title="{}">{}…</a>',
            reverse("call_detail", args=[obj.pk]),
            obj.trace_id,
            obj.trace_id[:8],
        )


@admin.register(CallRollup)
class CallRollupAdmin(ReadOnlyAdmin):
    list_display = ("grain", "bucket", "model_name", "task_type", "status", "count", "cost_usd")
    list_filter = ("grain", "status")
    search_fields = ("model_name", "task_type")
    show_full_result_count = False
    ordering = ("-bucket",)
