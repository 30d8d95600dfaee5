"""Read-only admin for call records and rollups: records are written by the engine only."""

from django.contrib import admin
from django.http import HttpRequest

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
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "trace_id",
    )
    list_filter = ("status", "source", "error_class", "simulated", "provider_kind")
    search_fields = ("=trace_id", "model_name", "task_type", "error_message")
    show_full_result_count = False  # no COUNT(*) over millions of rows per page
    list_per_page = 50
    ordering = ("-created_at", "-id")
    raw_id_fields = ("route", "prompt_version", "model", "api_key")


@admin.register(CallRollup)
class CallRollupAdmin(ReadOnlyAdmin):
    list_display = ("grain", "bucket", "model_name", "task_type", "status", "count", "cost_usd")
    list_filter = ("grain", "status")
    search_fields = ("model_name", "task_type")
    show_full_result_count = False
    ordering = ("-bucket",)
