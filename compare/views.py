"""Compare runs and fault drills in the browser. Thin: parse, call one service or selector, render."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from compare import selectors
from compare.assertions import ASSERTION_KINDS
from compare.forms import DrillForm, RunForm, drill_input_parse, run_input_parse
from compare.models import CompareRun, Drill, DrillStatus
from compare.parsing import FORMATS
from compare.services.drills import FAULT_KINDS, DrillInputError, drill_launch
from compare.services.queueing import QueueUnavailable
from compare.services.runs import CompareInputError, run_cancel, run_create, run_estimate
from compare.services.votes import VoteError, cell_vote_create
from metrics.csv_export import csv_response
from orchestrator_site.htmx import HtmxHttpRequest


def request_list(data: Any, key: str) -> list[str]:
    return list(data.getlist(key)) if hasattr(data, "getlist") else []


def _index_context(form: RunForm, errors: list[str] | None = None, estimate=None) -> dict:
    return {
        "form": form,
        "errors": errors or [],
        "estimate": estimate,
        "runs": selectors.runs_recent(),
        "choices": selectors.candidate_choices(),
        "assertion_kinds": ASSERTION_KINDS,
        "formats": FORMATS,
        "selected": set(request_list(form.data, "candidates")),
    }


@require_GET
def index(request: HtmxHttpRequest) -> HttpResponse:
    context = _index_context(RunForm())
    if request.htmx:
        return render(request, "compare/index.html#runs", context)
    return render(request, "compare/index.html", context)


@require_POST
def estimate(request: HtmxHttpRequest) -> HttpResponse:
    """The cost estimate for the form as filled in (a fragment; the page without htmx)."""
    form = RunForm(request.POST, request.FILES)
    parsed, errors = run_input_parse(form, request.POST)
    result = None
    if parsed is not None:
        result = run_estimate(
            rows=parsed.rows,
            candidates=parsed.candidates,
            assertions=parsed.assertions,
            max_tokens=parsed.max_tokens,
        )
    context = {"estimate": result, "errors": errors, "parsed": parsed}
    if request.htmx:
        return render(request, "compare/index.html#estimate", context)
    if parsed is not None and request.FILES.get("prompts_file"):
        # A re-rendered page cannot keep the upload: carry its rows in the text box instead.
        data = request.POST.copy()
        data["prompts_format"] = "jsonl"
        data["prompts_text"] = "\n".join(
            json.dumps({k: v for k, v in vars(row).items() if v}, ensure_ascii=False) for row in parsed.rows
        )
        form = RunForm(data)
    full = _index_context(form, errors, result)
    full["parsed"] = parsed
    return render(request, "compare/index.html", full, status=200 if parsed else 400)


@require_POST
def create(request: HtmxHttpRequest) -> HttpResponse:
    form = RunForm(request.POST, request.FILES)
    parsed, errors = run_input_parse(form, request.POST)
    if parsed is not None:
        try:
            run = run_create(
                user=request.user,
                name=parsed.name,
                rows=parsed.rows,
                candidates=parsed.candidates,
                assertions=parsed.assertions,
                max_tokens=parsed.max_tokens,
                temperature=parsed.temperature,
                spend_cap_usd=parsed.spend_cap_usd,
            )
        except (CompareInputError, QueueUnavailable) as exc:
            errors = [str(exc)]
        else:
            url = reverse("compare:run", args=[run.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {"errors": errors, "estimate": None}
    if request.htmx:
        return render(request, "compare/index.html#estimate", context, status=400)
    return render(request, "compare/index.html", _index_context(form, errors), status=400)


def _run_context(request: HtmxHttpRequest, run: CompareRun) -> dict:
    only_differ = request.GET.get("differ") == "1"
    return {
        "run": run,
        "progress": selectors.run_progress(run=run),
        "matrix": selectors.run_matrix(run=run, only_differ=only_differ),
        "only_differ": only_differ,
        "winners": [("a", "A better"), ("b", "B better"), ("tie", "Tie"), ("both_bad", "Both bad")],
    }


@require_GET
def run_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(CompareRun, pk=pk)
    context = _run_context(request, run)
    if request.htmx:
        return render(request, "compare/run.html#matrix", context)
    return render(request, "compare/run.html", context)


def _since(value: str | None) -> datetime | None:
    """The `since` the progress fragment carries (an ISO time); anything else means none."""
    try:
        parsed = datetime.fromisoformat(value or "")
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@require_GET
def run_progress(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(CompareRun, pk=pk)
    since = _since(request.GET.get("since"))
    context = {
        "run": run,
        "progress": selectors.run_progress(run=run),
        # The cells that changed since the last poll, swapped into the matrix out of band.
        "changed_cells": [] if since is None else selectors.run_cells_changed(run=run, since=since),
    }
    response = render(request, "compare/run.html#progress", context)
    if run.is_finished and request.headers.get("X-Compare-Was-Running") == "1":
        # Tell the page to load the final matrix once (the fragment itself stops polling).
        response["HX-Trigger"] = "compare-run-finished"
    return response


@require_POST
def run_cancel_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(CompareRun, pk=pk)
    if not (request.user.is_staff or run.created_by_id == request.user.pk):
        return HttpResponseForbidden("Only the run's creator or staff can cancel it.")
    if run_cancel(run=run):
        messages.info(request, "Run cancelled: waiting cells will not run.")
    run.refresh_from_db()
    if request.htmx:
        return render(
            request, "compare/run.html#progress", {"run": run, "progress": selectors.run_progress(run=run)}
        )
    return redirect("compare:run", pk=run.pk)


@require_GET
def run_export(request: HtmxHttpRequest, pk: int, fmt: str) -> HttpResponse:
    if fmt not in ("csv", "json"):
        raise Http404(f"No export as {fmt!r}: use .csv or .json.")
    run = get_object_or_404(CompareRun, pk=pk)
    filename = f"compare-run-{run.pk}.{fmt}"
    if fmt == "csv":
        rows = selectors.run_export_rows(run=run)
        header = list(rows[0].keys()) if rows else ["prompt"]
        return csv_response(filename=filename, header=header, rows=([row[k] for k in header] for row in rows))
    response = JsonResponse(selectors.run_export_document(run=run), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _cell_id(value: str | None) -> int:
    """A cell id from the vote form; anything that cannot be one becomes 0 (no such cell)."""
    try:
        number = int(value or 0)
    except ValueError:
        return 0
    return number if 0 < number < 2**63 else 0


@require_POST
def run_vote(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(CompareRun, pk=pk)
    try:
        cell_vote_create(
            user=request.user,
            run=run,
            cell_a_id=_cell_id(request.POST.get("cell_a")),
            cell_b_id=_cell_id(request.POST.get("cell_b")),
            winner=request.POST.get("winner", ""),
        )
    except VoteError as exc:
        message, status = str(exc), 400
    else:
        message, status = "Vote recorded: it counts towards the arena ratings.", 200
    if request.htmx:
        return render(
            request, "compare/run.html#vote_result", {"message": message, "ok": status == 200}, status=status
        )
    (messages.success if status == 200 else messages.error)(request, message)
    return redirect("compare:run", pk=run.pk)


# -- Drills -------------------------------------------------------------------------------


def _drills_context(form: DrillForm, errors: list[str] | None = None) -> dict:
    return {
        "form": form,
        "errors": errors or [],
        "drills": selectors.drills_recent(),
        "targets": selectors.drill_target_choices(),
        "fault_kinds": FAULT_KINDS,
        "fault_rows": range(3),
    }


@require_GET
def drills(request: HtmxHttpRequest) -> HttpResponse:
    context = _drills_context(DrillForm())
    if request.htmx:
        return render(request, "compare/drills.html#drill_list", context)
    return render(request, "compare/drills.html", context)


@require_POST
@staff_member_required
def drill_create_view(request: HtmxHttpRequest) -> HttpResponse:
    form = DrillForm(request.POST)
    parsed, errors = drill_input_parse(form, request.POST)
    if parsed is not None:
        try:
            drill = drill_launch(drill_kwargs={"user": request.user, "origin": "web", **parsed})
        except (DrillInputError, QueueUnavailable) as exc:
            errors = [str(exc)]
        else:
            url = reverse("compare:drill", args=[drill.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = _drills_context(form, errors)
    if request.htmx:
        return render(request, "compare/drills.html#drill_form", context, status=400)
    return render(request, "compare/drills.html", context, status=400)


@require_GET
def drill_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    drill = get_object_or_404(Drill, pk=pk)
    report = drill.report or {}
    running = drill.status in (DrillStatus.PENDING, DrillStatus.RUNNING)
    context = {
        "drill": drill,
        "report": report,
        "running": running,
        "progress": selectors.drill_progress(drill=drill) if running else None,
        "report_json": json.dumps(report, indent=2, default=str),
    }
    if request.htmx:
        return render(request, "compare/drill.html#report", context)
    return render(request, "compare/drill.html", context)
