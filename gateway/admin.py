"""API keys in the admin: the key is shown once (a message after saving), never stored."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from gateway.models import ApiKey, BudgetAlert
from gateway.services import api_key_assign_secret, api_key_revoke


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "prefix",
        "status",
        "budget_usd",
        "budget_period",
        "rpm",
        "tpm",
        "last_used",
        "created_at",
    )
    list_filter = ("budget_period",)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    fields = (
        "name",
        "prefix",
        ("budget_usd", "budget_period"),
        ("rpm", "tpm"),
        "allowed",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ["revoke"]

    @admin.display(description="last used", ordering="last_used_at")
    def last_used(self, obj: ApiKey) -> str:
        return f"{timezone.localtime(obj.last_used_at):%Y-%m-%d %H:%M}" if obj.last_used_at else "never"

    @admin.display(description="status")
    def status(self, obj: ApiKey) -> str:
        return f"revoked {timezone.localtime(obj.revoked_at):%Y-%m-%d %H:%M}" if obj.revoked_at else "active"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        raw = None
        if not change:
            raw = api_key_assign_secret(key=obj)
            obj.created_by = request.user if request.user.is_authenticated else None
        super().save_model(request, obj, form, change)
        if raw:
            messages.warning(
                request,
                format_html(
                    'The API key for {} is <code class="secret" id="new-api-key">{}</code>'
                    '<button type="button" class="copy-secret" data-copy="new-api-key">Copy</button>'
                    " — copy it now: it is shown only this once and cannot be recovered (only its hash is stored).",
                    repr(obj.name),
                    raw,
                ),
            )

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(key=key)
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        # Deleting would orphan the key's call records; revoke instead.
        return False


@admin.register(BudgetAlert)
class BudgetAlertAdmin(admin.ModelAdmin):
    list_display = ("api_key", "threshold", "period", "period_start", "spent_usd", "budget_usd", "created_at")
    list_filter = ("threshold", "period")
    readonly_fields = [f.name for f in BudgetAlert._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
