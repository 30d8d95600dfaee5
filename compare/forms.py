"""Forms: the new-run form (with the candidate and assertion lists) and the drill form."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings

from compare.assertions import AssertionSpec, AssertionSpecError, assertions_parse
from compare.parsing import FORMATS, PromptRow, PromptSetError, prompt_set_parse, upload_format, upload_text
from compare.services.drills import FAULT_KINDS, DrillInputError, FaultInput, faults_validate
from compare.services.runs import CandidateSpec, CompareInputError, candidates_parse, model_problem
from routing.models import ModelConfig

MAX_UPLOAD_BYTES = 5_000_000


class RunForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    prompts_text = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False, label="Prompts")
    prompts_format = forms.ChoiceField(choices=list(FORMATS.items()), initial="lines", label="Format")
    prompts_file = forms.FileField(required=False, label="…or upload CSV / JSONL")
    max_tokens = forms.IntegerField(min_value=1, max_value=32_000, initial=512, label="Max output tokens")
    temperature = forms.FloatField(min_value=0, max_value=2, required=False)
    spend_cap_usd = forms.DecimalField(
        min_value=Decimal("0.0001"), max_digits=12, decimal_places=4, required=False, label="Spend cap (USD)"
    )


@dataclass
class RunInput:
    name: str
    rows: list[PromptRow]
    candidates: list[CandidateSpec]
    assertions: list[AssertionSpec]
    max_tokens: int
    temperature: float | None
    spend_cap_usd: Decimal | None


def run_input_parse(form: RunForm, data: Any) -> tuple[RunInput | None, list[str]]:
    """Validate everything a run needs; return (input, []) or (None, messages)."""
    if not form.is_valid():
        errors = [
            f"{form.fields[f].label or f}: {' '.join(str(m) for m in e)}"
            if f != "__all__"
            else " ".join(str(m) for m in e)
            for f, e in form.errors.items()
        ]
        return None, errors
    cleaned = form.cleaned_data
    max_rows = int(settings.ORCHESTRATOR["COMPARE_MAX_PROMPTS"])
    try:
        upload = cleaned.get("prompts_file")
        if upload is not None:
            if upload.size > MAX_UPLOAD_BYTES:
                raise PromptSetError(
                    f"{upload.name}: the file is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB."
                )
            text = upload_text(upload.read(), filename=upload.name)
            try:
                rows = prompt_set_parse(text, fmt=upload_format(upload.name), max_rows=max_rows)
            except PromptSetError as exc:
                raise PromptSetError(f"{upload.name}: {exc}") from None
        else:
            rows = prompt_set_parse(
                cleaned["prompts_text"] or "", fmt=cleaned["prompts_format"], max_rows=max_rows
            )
        candidates = candidates_parse(values=data.getlist("candidates"), rows=rows)
        assertions = assertions_parse(
            data.getlist("assertion_kind"),
            data.getlist("assertion_value"),
            data.getlist("assertion_model"),
            known_models=set(ModelConfig.objects.values_list("name", flat=True)),
        )
        judges = {a.model for a in assertions if a.kind == "judge"}
        for judge in ModelConfig.objects.select_related("provider").filter(name__in=judges):
            problem = model_problem(judge)
            if problem:
                raise CompareInputError(f"Judge: {problem}")
    except (PromptSetError, CompareInputError, AssertionSpecError) as exc:
        return None, [str(exc)]
    return (
        RunInput(
            name=cleaned["name"] or "",
            rows=rows,
            candidates=candidates,
            assertions=assertions,
            max_tokens=cleaned["max_tokens"],
            temperature=cleaned["temperature"],
            spend_cap_usd=cleaned["spend_cap_usd"],
        ),
        [],
    )


class DrillForm(forms.Form):
    target = forms.CharField(max_length=120, help_text="chain:NAME or route:TASK_TYPE")
    requests = forms.IntegerField(min_value=1, max_value=1000, initial=20)
    concurrency = forms.IntegerField(min_value=1, max_value=32, initial=4)
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    stream = forms.BooleanField(
        required=False, help_text="Stream the answers (needed for stream cuts to bite)."
    )
    baseline = forms.BooleanField(required=False, help_text="First send the same requests without faults.")


def drill_input_parse(form: DrillForm, data: Any) -> tuple[dict[str, Any] | None, list[str]]:
    if not form.is_valid():
        return None, [f"{f}: {' '.join(str(m) for m in e)}" for f, e in form.errors.items()]
    kind, _, target = form.cleaned_data["target"].partition(":")
    faults = []
    models, kinds, rates = data.getlist("fault_model"), data.getlist("fault_kind"), data.getlist("fault_rate")
    try:
        for index, model in enumerate(models):
            if not model.strip():
                continue
            kind_value = kinds[index] if index < len(kinds) else ""
            if kind_value not in FAULT_KINDS:
                raise DrillInputError(f"Fault {index + 1}: pick how {model} fails.")
            raw_rate = (rates[index] if index < len(rates) else "") or "1"
            try:
                rate = float(raw_rate)
            except ValueError:
                raise DrillInputError(f"Fault {index + 1}: the rate {raw_rate!r} is not a number.") from None
            faults.append(FaultInput(model=model.strip(), kind=kind_value, rate=rate))
        faults_validate(faults)
    except DrillInputError as exc:
        return None, [str(exc)]
    return (
        {
            "target_kind": kind,
            "target": target,
            "faults": faults,
            "requests": form.cleaned_data["requests"],
            "concurrency": form.cleaned_data["concurrency"],
            "prompt": form.cleaned_data["prompt"] or "",
            "stream": form.cleaned_data["stream"],
            "baseline": form.cleaned_data["baseline"],
        },
        [],
    )
