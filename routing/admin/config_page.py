"""Config as code from the admin: download the YAML, or upload/paste one to preview and apply.

The same `config_import` as the command line: whole-file validation, one transaction, and the
history of every change attributed to the staff member who applied it.
"""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from routing.config_io import ConfigImportError, config_export, config_import

View = Callable[..., HttpResponse]

# Importing can touch every kind of routing object.
IMPORT_PERMISSIONS = [
    f"routing.{action}_{model}"
    for model in ("provider", "capability", "modelconfig", "fallbackchain", "chainstep", "taskroute")
    for action in ("add", "change")
]
MAX_BYTES = 2_000_000


class ConfigUploadForm(forms.Form):
    file = forms.FileField(
        required=False,
        help_text="A YAML file in the layout the configuration guide (/docs/configuration/) describes.",
    )
    text = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "cols": 100, "spellcheck": "false"}),
        help_text="…or paste the YAML here.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("file")
        if upload is not None:
            if upload.size > MAX_BYTES:
                raise forms.ValidationError(f"The file is larger than {MAX_BYTES // 1_000_000} MB.")
            try:
                cleaned["yaml"] = upload.read().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise forms.ValidationError("The file is not UTF-8 text.") from exc
        elif cleaned.get("text", "").strip():
            cleaned["yaml"] = cleaned["text"]
        else:
            raise forms.ValidationError("Choose a file or paste YAML.")
        return cleaned


def export_view(model_admin: Any) -> View:
    @require_http_methods(["GET"])
    def view(request: HttpRequest) -> HttpResponse:
        if not model_admin.has_view_permission(request):
            raise PermissionDenied
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response = HttpResponse(config_export(), content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="orchestrator-config-{stamp}.yaml"'
        return response

    return view


def import_view(model_admin: Any) -> View:
    @require_http_methods(["GET", "POST"])
    def view(request: HttpRequest) -> HttpResponse:
        can_import = request.user.has_perms(IMPORT_PERMISSIONS)
        if not model_admin.has_view_permission(request):
            raise PermissionDenied
        context: dict[str, Any] = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": "Import and export configuration",
            "can_import": can_import,
            "export_url": reverse("admin:routing_config_export"),
        }
        status = 200
        form = ConfigUploadForm()
        if request.method == "POST":
            if not can_import:
                raise PermissionDenied
            form = ConfigUploadForm(request.POST, request.FILES)
            apply = request.POST.get("action") == "apply"
            if form.is_valid():
                try:
                    report = config_import(
                        text=form.cleaned_data["yaml"],
                        dry_run=not apply,
                        user=request.user,
                        source="admin upload",
                    )
                except ConfigImportError as exc:
                    context["errors"] = exc.errors
                    status = 400
                else:
                    if apply:
                        messages.success(request, report.summary())
                        return HttpResponseRedirect(reverse("admin:routing_config"))
                    context["report"] = report
                    # Keep the text so "Apply" sends exactly what was previewed.
                    form = ConfigUploadForm(initial={"text": form.cleaned_data["yaml"]})
            else:
                status = 400
        context["form"] = form
        return TemplateResponse(request, "admin/routing/config.html", context, status=status)

    return view
