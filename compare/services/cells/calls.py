"""A cell's calls through the engine: its answer (or the one already recorded in its
trace), its judges and assertion checks, and what it would be priced at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync

from compare.assertions import check_local, judge_messages, judge_verdict, spec_from_dict
from compare.models import CandidateKind, CompareCell
from metrics.selectors.records import trace_last
from routing import orchestrator
from routing.errors import AllAttemptsFailed, OrchestratorError, ProviderError
from routing.models import ModelConfig, PromptVersion, TaskRoute

if TYPE_CHECKING:
    from metrics.models import CallRecord

SOURCE = "batch"


@dataclass
class Answer:
    text: str
    model: str
    latency_ms: float | None
    input_tokens: int
    output_tokens: int
    record_id: int | None
    reused: bool


def answer_from_record(record: CallRecord) -> Answer:
    return Answer(
        text=record.response_text,
        model=record.model_name,
        latency_ms=record.latency_ms,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        record_id=record.pk,
        reused=True,
    )


def finished_call(trace_id: str) -> CallRecord | None:
    return trace_last(trace_id=trace_id, ok_only=True)


def call_kwargs(cell: CompareCell, trace_id: str, role: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"source": SOURCE, "trace_id": trace_id, "role": role}
    run = cell.run
    if run.temperature is not None:
        kwargs["temperature"] = run.temperature
    if run.max_tokens:
        kwargs["max_tokens"] = run.max_tokens
    return kwargs


async def acall(cell: CompareCell, system_prompt: str | None) -> Answer:

    candidate = cell.candidate
    prompt = cell.prompt
    kwargs = call_kwargs(cell, cell.trace_id, "cell")
    if candidate.kind == CandidateKind.MODEL:
        messages = [{"role": "user", "content": prompt.input}]
        result = await orchestrator.acomplete(messages, model=candidate.target, **kwargs)
    else:
        task_type = prompt.task_type if candidate.target == "*" else candidate.target
        if system_prompt is not None:
            kwargs["system"] = system_prompt
        result = await orchestrator.aroute(task_type, prompt.input, **kwargs)
    await orchestrator.arecords_flush()
    record_id = next((a.record_id for a in reversed(result.attempts) if a.status == "ok"), None)
    return Answer(
        text=result.text,
        model=result.model,
        latency_ms=result.latency_ms,
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        record_id=record_id,
        reused=False,
    )


async def ajudge(messages: list[dict[str, str]], *, model: str, kwargs: dict[str, Any]) -> str:

    result = await orchestrator.acomplete(messages, model=model, **kwargs)
    await orchestrator.arecords_flush()
    return result.text


def checks_run(cell: CompareCell, answer: Answer) -> list[dict[str, Any]]:
    results = []
    for index, data in enumerate(cell.run.assertions or []):
        spec = spec_from_dict(data)
        if spec.kind != "judge":
            results.append(check_local(spec, output=answer.text, expected=cell.prompt.expected))
            continue
        # Each judge assertion has its own trace (derived from the cell's), reused on redelivery.
        trace = f"{cell.judge_trace_id[:30]}{index:02d}"
        earlier = finished_call(trace)
        try:
            if earlier is not None:
                text = earlier.response_text
            else:
                messages = judge_messages(
                    spec, prompt=cell.prompt.input, output=answer.text, expected=cell.prompt.expected
                )
                kwargs = {"source": SOURCE, "trace_id": trace, "role": "judge", "max_tokens": 200}
                text = async_to_sync(ajudge)(messages, model=spec.model, kwargs=kwargs)
            results.append(judge_verdict(spec, text))
        except (OrchestratorError, ProviderError) as exc:
            results.append(
                {"kind": "judge", "label": spec.label, "passed": False, "detail": f"judge failed: {exc}"}
            )
    return results


def judge_traces(cell: CompareCell) -> list[str]:
    return [f"{cell.judge_trace_id[:30]}{i:02d}" for i, _ in enumerate(cell.run.assertions or [])]


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, AllAttemptsFailed):
        return any(a.error_class == "transient" for a in exc.attempts) or exc.http_status in (503, 504)
    if isinstance(exc, ProviderError):
        return exc.error_class == "transient"
    return False


def system_prompt_for(cell: CompareCell) -> str | None:
    if cell.candidate.kind != CandidateKind.PROMPT:
        return None
    version = PromptVersion.objects.filter(pk=cell.candidate.prompt_version_id or 0).first()
    if version is None:
        raise OrchestratorError("The prompt version was deleted.")
    return version.system_prompt


def price_model(cell: CompareCell) -> ModelConfig | None:
    candidate = cell.candidate
    if candidate.kind == CandidateKind.MODEL:
        return ModelConfig.objects.filter(name=candidate.target).first()
    task_type = cell.prompt.task_type if candidate.target == "*" else candidate.target
    route = TaskRoute.objects.select_related("model").filter(task_type=task_type).first()
    return route.model if route else None
