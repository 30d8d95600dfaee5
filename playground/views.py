"""Playground pages. Thin: parse, call one service or selector, render (page or fragment)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from orchestrator_site.htmx import HtmxHttpRequest
from playground import selectors, services
from playground.consensus import consensus_events
from playground.forms import IMAGE_TYPES, ArenaForm, AskForm, max_models
from playground.models import (
    FINISHED_STATUSES,
    Aggregator,
    ColumnStatus,
    PlaygroundColumn,
    PlaygroundRun,
    RunMode,
    Winner,
)
from playground.streaming import column_events
from routing.messages import IMAGE_MAX_BYTES
from routing.models import TaskRoute

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _picker_context() -> dict[str, Any]:
    return {
        "groups": selectors.model_picker(),
        "routes": selectors.routes_enabled(),
        "chains": selectors.chains_all(),
        "max_models": max_models(),
        "aggregators": Aggregator.choices,
        "image_types": IMAGE_TYPES,
        "image_max_bytes": IMAGE_MAX_BYTES,
        "image_max_mb": IMAGE_MAX_BYTES // 1_048_576,
    }


def _run_context(request: HtmxHttpRequest, run: PlaygroundRun) -> dict[str, Any]:
    columns = list(run.columns.all())
    blind = run.mode == RunMode.ARENA and not list(run.votes.all())
    return {
        "run": run,
        "columns": columns,
        "may_run": run.user_id == request.user.pk,
        "blind": blind,
        "vote": next(iter(run.votes.all()), None),
        "winners": Winner.choices,
        "all_finished": all(c.finished for c in columns)
        and (run.mode != RunMode.CONSENSUS or run.consensus_status in FINISHED_STATUSES),
        "all_answered": all(c.status == ColumnStatus.OK for c in columns),
    }


def _errors_response(request: HtmxHttpRequest, template: str, errors: list[str]) -> HttpResponse:
    response = render(request, f"{template}#errors", {"errors": errors})
    return reswap(retarget(response, "#pg-errors"), "innerHTML")


@require_http_methods(["GET", "POST"])
def index(request: HtmxHttpRequest) -> HttpResponse:
    form = AskForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            run = services.run_create(
                image=data["image_uri"],
                tools=data["tool_list"],
                tool_choice=data["tool_choice_value"],
                user=request.user,
                mode=data["mode"],
                prompt=data["prompt"],
                system_prompt=data.get("system_prompt") or "",
                temperature=data.get("temperature"),
                max_tokens=data.get("max_tokens"),
                models=[m.name for m in data["model_objs"]],
                route=data["route_obj"],
                chain=data.get("chain") or "",
                aggregator=data.get("aggregator") or "majority",
                judge_model=data.get("judge_model") or "",
            )
            full = selectors.run_get(run_id=run.pk)
            assert full is not None
            if request.htmx:
                return render(request, "playground/run.html#run", _run_context(request, full))
            return HttpResponseRedirect(reverse("playground:run", args=[run.pk]))
        if request.htmx:
            return _errors_response(request, "playground/index.html", _form_errors(form))
    context = {
        "form": form,
        "errors": _form_errors(form) if form.is_bound else [],
    }
    context.update(_picker_context())
    context["selected"] = set(request.POST.getlist("models")) if request.method == "POST" else set()
    context["mode"] = (
        form.data.get("mode", RunMode.MODELS) if form.is_bound else request.GET.get("mode", RunMode.MODELS)
    )
    return render(request, "playground/index.html", context)


def _form_errors(form: Any) -> list[str]:
    return [str(e) for e in form.non_field_errors()] + [
        f"{form.fields[name].label or name.replace('_', ' ').capitalize()}: {e}"
        for name, errs in form.errors.items()
        if name != "__all__"
        for e in errs
    ]


@require_GET
def route_prompt(request: HtmxHttpRequest) -> HttpResponse:
    """The system prompt box, prefilled from the chosen route's active prompt version."""
    route = TaskRoute.objects.filter(task_type=request.GET.get("route", "")).first()
    prompt = selectors.route_active_prompt(route=route)
    context = {
        "system_prompt": prompt.system_prompt if prompt else "",
        "prompt_version": prompt,
        "route": route,
    }
    if request.htmx:
        return render(request, "playground/index.html#system_prompt", context)
    return HttpResponseRedirect(f"{reverse('playground:index')}?mode=route")


@require_GET
def run_detail(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get(run_id=run_id)
    if run is None:
        raise Http404("No such run.")
    context = _run_context(request, run)
    if request.htmx:
        return render(request, "playground/run.html#run", context)
    context["records"] = [] if context["blind"] else selectors.run_call_records(run=run)
    return render(request, "playground/run.html", context)


@require_GET
def column_detail(request: HtmxHttpRequest, run_id: int, position: int) -> HttpResponse:
    run = selectors.run_get(run_id=run_id)
    if run is None:
        raise Http404("No such run.")
    context = _run_context(request, run)
    column = next((c for c in context["columns"] if c.position == position), None)
    if column is None:
        raise Http404("No such column.")
    context["c"] = column
    return render(request, "playground/run.html#column", context)


async def column_stream(
    request: HtmxHttpRequest, run_id: int, position: int
) -> HttpResponse | StreamingHttpResponse:
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET"})
    user = await request.auser()
    column = (
        await PlaygroundColumn.objects.select_related("run")
        .filter(run__pk=run_id, position=position)
        .afirst()
    )
    if column is None:
        raise Http404("No such column.")
    if column.run.mode == RunMode.CONSENSUS:
        raise Http404("Consensus columns stream through the consensus stream.")
    may_run = column.run.user_id == user.pk
    return StreamingHttpResponse(
        column_events(column=column, may_run=may_run), content_type="text/event-stream", headers=SSE_HEADERS
    )


async def consensus_stream(request: HtmxHttpRequest, run_id: int) -> HttpResponse | StreamingHttpResponse:
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET"})
    user = await request.auser()
    run = await PlaygroundRun.objects.filter(pk=run_id, mode=RunMode.CONSENSUS).afirst()
    if run is None:
        raise Http404("No such consensus run.")
    return StreamingHttpResponse(
        consensus_events(run=run, may_run=run.user_id == user.pk),
        content_type="text/event-stream",
        headers=SSE_HEADERS,
    )


def _own_run(request: HtmxHttpRequest, run_id: int) -> PlaygroundRun:
    run = get_object_or_404(PlaygroundRun, pk=run_id)
    if run.user_id != request.user.pk:
        raise PermissionDenied("Only the person who sent this run can change it.")
    return run


@require_POST
def run_stop(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    run = _own_run(request, run_id)
    services.run_stop(run=run)
    if request.htmx or request.headers.get("X-Requested-With") == "fetch":
        return HttpResponse(status=204)
    return HttpResponseRedirect(reverse("playground:run", args=[run.pk]))


@require_POST
def column_rerun(request: HtmxHttpRequest, run_id: int, position: int) -> HttpResponse:
    run = _own_run(request, run_id)
    if run.mode in (RunMode.CONSENSUS, RunMode.ARENA):
        return HttpResponse("Consensus and arena rounds are re-run as a whole: send again.", status=400)
    column = get_object_or_404(PlaygroundColumn, run=run, position=position)
    services.column_reset(column=column)
    if request.htmx:
        full = selectors.run_get(run_id=run.pk)
        assert full is not None
        context = _run_context(request, full)
        context["c"] = next(c for c in context["columns"] if c.position == position)
        return render(request, "playground/run.html#column", context)
    return HttpResponseRedirect(reverse("playground:run", args=[run.pk]))


@require_GET
def history(request: HtmxHttpRequest) -> HttpResponse:
    mine = request.GET.get("who", "mine") != "all"
    query = request.GET.get("q", "").strip()
    runs = selectors.runs_for_history(user=request.user if mine else None, query=query)
    context = {"runs": runs, "mine": mine, "q": query}
    if request.htmx:
        return render(request, "playground/history.html#rows", context)
    return render(request, "playground/history.html", context)


# -- Arena ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def arena(request: HtmxHttpRequest) -> HttpResponse:
    form = ArenaForm(request.POST or None)
    errors: list[str] = []
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                model_a, model_b = services.arena_pick_models(
                    capability=data.get("capability") or "",
                    route=data["route_obj"],
                    model_a=data.get("model_a") or "",
                    model_b=data.get("model_b") or "",
                )
                errors = _arena_context_errors(data["tokens"], [model_a, model_b])
            except services.PlaygroundError as exc:
                errors = [str(exc)]
            if not errors:
                route = data["route_obj"]
                system = data.get("system_prompt") or ""
                if not system and route is not None:
                    active = selectors.route_active_prompt(route=route)
                    system = active.system_prompt if active else ""
                run = services.run_create(
                    user=request.user,
                    mode=RunMode.ARENA,
                    prompt=data["prompt"],
                    system_prompt=system,
                    models=[model_a, model_b],
                    route=route,
                    capability=data.get("capability") or "",
                )
                full = selectors.run_get(run_id=run.pk)
                assert full is not None
                if request.htmx:
                    return render(request, "playground/arena.html#round", _run_context(request, full))
                return HttpResponseRedirect(reverse("playground:run", args=[run.pk]))
        else:
            errors = _form_errors(form)
        if request.htmx:
            return _errors_response(request, "playground/arena.html", errors)
    context = {
        "form": form,
        "errors": errors,
        "capabilities": selectors.capability_slugs(),
        "routes": selectors.routes_enabled(),
        "models": [o for o in selectors.model_options() if o.usable],
    }
    return render(request, "playground/arena.html", context)


def _arena_context_errors(tokens: int, names: list[str]) -> list[str]:
    return [
        f"The prompt is about {tokens:,} tokens; one of the drawn models takes at most {window:,}."
        for window in selectors.context_windows_below(names=names, tokens=tokens)
    ][:1]


@require_POST
def arena_vote(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    run = _own_run(request, run_id)
    if run.mode != RunMode.ARENA:
        raise Http404("Not an arena round.")
    columns = list(run.columns.order_by("position"))
    winner = request.POST.get("winner", "")
    if run.votes.exists():
        message = "You already voted on this round."
    elif winner not in Winner.values:
        message = "Pick A, B, tie or both bad."
    elif not all(c.finished for c in columns):
        message = "Wait until both answers have finished, then vote."
    elif any(c.status != ColumnStatus.OK for c in columns):
        # A failure says nothing about answer quality: counting it would skew the ratings.
        message = "An answer failed, so this round cannot be rated: start another round."
    else:
        message = ""
        services.vote_create(
            user=request.user,
            prompt=run.prompt,
            model_a=columns[0].target_model,
            model_b=columns[1].target_model,
            winner=winner,
            capability=run.capability,
            task_type=run.task_type,
            source="arena",
            run=run,
        )
    full = selectors.run_get(run_id=run.pk)
    assert full is not None
    context = _run_context(request, full)
    context["vote_error"] = message
    if request.htmx:
        return render(
            request,
            "playground/arena.html#round",
            context,
            status=400 if message and not context["vote"] else 200,
        )
    return HttpResponseRedirect(reverse("playground:run", args=[run.pk]))


@require_GET
def leaderboard(request: HtmxHttpRequest) -> HttpResponse:
    capability = request.GET.get("capability", "")
    task_type = request.GET.get("route", "")
    board = selectors.leaderboard(capability=capability, task_type=task_type)
    context = {
        "board": board,
        "capability": capability,
        "route": task_type,
        "facets": selectors.vote_facets(),
        "min_votes": settings.ORCHESTRATOR.get("RATING_MIN_VOTES", 20),
    }
    if request.htmx:
        return render(request, "playground/leaderboard.html#board", context)
    return render(request, "playground/leaderboard.html", context)
