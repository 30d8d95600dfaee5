"""The route's prompt history page: every version with a diff, rollback and per-model variants.

Custom admin views (wrapped in `admin_site.admin_view`: staff only, CSRF-protected). They
parse input, call one service or selector and render.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from routing.forms import VariantPromptForm
from routing.models import PromptVersion, TaskRoute
from routing.selectors import route_prompt_history
from routing.services import route_rollback_prompt, route_update_prompt

View = Callable[..., HttpResponse]


def _route(model_admin: Any, request: HttpRequest, object_id: str, *, change: bool) -> TaskRoute:
    route = model_admin.get_object(request, object_id)
    if route is None:
        raise Http404("No such route.")
    allowed = (
        model_admin.has_change_permission(request, route)
        if change
        else model_admin.has_view_or_change_permission(request, route)
    )
    if not allowed:
        raise PermissionDenied
    return route


def _history_url(route: TaskRoute) -> str:
    return reverse("admin:routing_taskroute_prompts", args=[route.pk])


def history_view(model_admin: Any) -> View:
    def view(request: HttpRequest, object_id: str) -> HttpResponse:
        route = _route(model_admin, request, object_id, change=False)
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": f"Prompt history: {route.task_type}",
            "route": route,
            "series": route_prompt_history(route=route),
            "variant_form": VariantPromptForm(),
            "can_change": model_admin.has_change_permission(request, route),
        }
        return TemplateResponse(request, "admin/routing/taskroute/prompt_history.html", context)

    return view


def rollback_view(model_admin: Any) -> View:
    @require_POST
    def view(request: HttpRequest, object_id: str, version_id: int) -> HttpResponse:
        route = _route(model_admin, request, object_id, change=True)
        version = get_object_or_404(PromptVersion, pk=version_id, route=route)
        route_rollback_prompt(route=route, version=version, user=request.user)
        target = f" for {version.model.name}" if version.model is not None else ""
        messages.success(request, f"Prompt v{version.version}{target} is active again.")
        return HttpResponseRedirect(_history_url(route))

    return view


def variant_view(model_admin: Any) -> View:
    @require_POST
    def view(request: HttpRequest, object_id: str) -> HttpResponse:
        route = _route(model_admin, request, object_id, change=True)
        form = VariantPromptForm(request.POST)
        if not form.is_valid():
            context = {
                **model_admin.admin_site.each_context(request),
                "opts": model_admin.model._meta,
                "title": f"Prompt history: {route.task_type}",
                "route": route,
                "series": route_prompt_history(route=route),
                "variant_form": form,
                "can_change": True,
            }
            return TemplateResponse(
                request, "admin/routing/taskroute/prompt_history.html", context, status=400
            )
        model = form.cleaned_data["model"]
        version = route_update_prompt(
            route=route,
            model=model,
            system_prompt=form.cleaned_data["system_prompt"],
            user=request.user,
            note=form.cleaned_data["note"],
        )
        if version is None:
            messages.success(request, f"{model.name} now gets the route's prompt (variant removed).")
        else:
            messages.success(request, f"{model.name} uses variant v{version.version}.")
        return HttpResponseRedirect(_history_url(route))

    return view
