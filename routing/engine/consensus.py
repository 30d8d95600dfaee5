"""Consensus: one prompt to several models at once, and the ways to pick an answer.

Members run concurrently (wall time ≈ the slowest member). Each member is a one-model plan
(transient errors retried); a member that fails leaves its error in the result.

Aggregators:
- majority: answers are normalized (case, whitespace and punctuation folded) and counted;
  the largest group wins; a tie goes to the group containing the earliest-listed model.
- judge: `judge_model` reads the question and the numbered answers and names the best one
  with a reason (its call is recorded with role "judge"). If the judge fails or its answer
  cannot be read, majority decides and the explanation says so.
- similarity: the answer with the highest mean token-set similarity (Jaccard) to the other
  answers wins; ties go to the earliest-listed model.
- fastest: the first member to succeed wins; the others are cancelled (recorded as
  cancelled).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import string
from decimal import Decimal

from routing.engine.execute import plan_run
from routing.engine.trace import Messages, Step, Trace
from routing.engine.types import ConsensusResult, MemberOutcome, Result
from routing.errors import AllAttemptsFailed, OrchestratorError
from routing.messages import NO_CHAT_OPTIONS, record_view
from routing.sampling import NO_SAMPLING

AGGREGATORS = ("majority", "judge", "similarity", "fastest")

_PUNCT = str.maketrans("", "", string.punctuation + "“”‘’«»…")


def normalize(text: str) -> str:
    return " ".join(text.lower().translate(_PUNCT).split())


def _tokens(text: str) -> set[str]:
    return set(normalize(text).split())


def jaccard(a: str, b: str) -> float:
    ta, tb = _tokens(a), _tokens(b)
    if not ta and not tb:
        return 1.0
    return len(ta & tb) / len(ta | tb)


def _outcome(model: str, value: Result | BaseException) -> MemberOutcome:
    if isinstance(value, Result):
        return MemberOutcome(model=model, status="ok", result=value)
    if isinstance(value, asyncio.CancelledError):
        return MemberOutcome(
            model=model, status="cancelled", error="cancelled: another member answered first"
        )
    status = "timeout" if getattr(value, "http_status", None) == 504 else "error"
    return MemberOutcome(model=model, status=status, error=str(value))  # type: ignore[arg-type]


def _total_cost(members: list[MemberOutcome], judge: Result | None) -> Decimal | None:
    total = Decimal(0)
    results = [m.result for m in members if m.result is not None] + ([judge] if judge else [])
    for r in results:
        if r.cost_usd is None:
            return None  # an unknown price makes the total unknown, never understated
        total += r.cost_usd
    return total


def majority(members: list[MemberOutcome]) -> tuple[MemberOutcome, dict[str, int], str]:
    groups: dict[str, list[int]] = {}
    ok = [(i, m) for i, m in enumerate(members) if m.result is not None]
    for i, m in ok:
        assert m.result is not None
        groups.setdefault(normalize(m.result.text), []).append(i)
    # Largest group; ties → the group holding the earliest-listed model.
    best_key = min(groups, key=lambda k: (-len(groups[k]), groups[k][0]))
    winner = members[groups[best_key][0]]
    votes: dict[str, int] = {}
    for indices in groups.values():
        result = members[indices[0]].result
        assert result is not None
        votes[result.text.strip()] = len(indices)
    size = len(groups[best_key])
    tied = [k for k in groups if len(groups[k]) == size]
    if len(tied) > 1:
        how = (
            f"{len(tied)} answers tied with {size} vote(s) each among {len(ok)} answers; "
            f"the tie went to the earliest-listed model, {winner.model}."
        )
    else:
        agreeing = ", ".join(members[i].model for i in groups[best_key])
        how = f"{size} of {len(ok)} answers agreed ({agreeing}) after folding case, spaces and punctuation."
    return winner, votes, how


def similarity(members: list[MemberOutcome]) -> tuple[MemberOutcome, str]:
    ok = [m for m in members if m.result is not None]
    if len(ok) == 1:
        return ok[0], f"only {ok[0].model} answered."
    scores: list[float] = []
    for m in ok:
        assert m.result is not None
        others = [jaccard(m.result.text, o.result.text) for o in ok if o is not m and o.result is not None]
        scores.append(sum(others) / len(others))
    best = max(range(len(ok)), key=lambda i: (scores[i], -i))
    detail = ", ".join(f"{m.model} {s:.2f}" for m, s in zip(ok, scores, strict=True))
    return ok[
        best
    ], f"{ok[best].model}'s answer is closest to the others (mean word-overlap similarity: {detail})."


JUDGE_PROMPT = (
    "You are judging answers to the same question from several assistants. Pick the single best "
    "answer: the most correct, complete and clear. Reply with JSON only, exactly like "
    '{"best": <answer number>, "reason": "<one sentence>"}.'
)


def judge_messages(messages: Messages, answers: list[str]) -> Messages:
    question = record_view([m for m in messages if m.get("role") != "system"])
    numbered = "\n\n".join(f"Answer {i}:\n{text}" for i, text in enumerate(answers, start=1))
    return [
        {"role": "system", "content": JUDGE_PROMPT},
        {"role": "user", "content": f"Question:\n{question}\n\n{numbered}"},
    ]


def judge_parse(text: str, count: int) -> tuple[int, str] | None:
    """(0-based index, reason) from the judge's reply, or None when it names no valid answer."""
    reply = text.strip()
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", reply, re.DOTALL)
    candidates = [fenced.group(1)] if fenced else []
    candidates += re.findall(r"\{[^{}]*\}", reply, re.DOTALL)
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(data, dict):
            best = data.get("best", data.get("answer", data.get("winner")))
            try:
                index = int(str(best).strip().lstrip("#"))
            except (TypeError, ValueError):
                continue
            if 1 <= index <= count:
                return index - 1, str(data.get("reason", "")).strip()
    match = re.search(r"\b(?:answer|best|choose|pick|winner)\D{0,20}?(\d+)", reply, re.IGNORECASE)
    if match is None:
        match = re.search(r"\b(\d+)\b", reply)
    if match is not None:
        index = int(match.group(1))
        if 1 <= index <= count:
            return index - 1, reply[:300]
    return None


async def consensus_run(
    trace: Trace,
    steps: list[Step],
    messages: Messages,
    *,
    aggregator: str,
    judge_step: Step | None = None,
) -> ConsensusResult:
    names = [s.model.name for s in steps]

    async def member(step: Step) -> Result:
        return await plan_run(trace, [step], messages)

    tasks: list[asyncio.Future[Result]] = [asyncio.ensure_future(member(s)) for s in steps]
    values: list[Result | BaseException]
    first: int | None = None
    if aggregator == "fastest":
        values, first = await _first_success(tasks)
    else:
        values = list(await asyncio.gather(*tasks, return_exceptions=True))
    members = [_outcome(n, v) for n, v in zip(names, values, strict=True)]
    ok = [m for m in members if m.result is not None]
    if not ok:
        attempts = [a for v in values if isinstance(v, AllAttemptsFailed) for a in v.attempts]
        errors = "; ".join(f"{m.model}: {m.error}" for m in members)
        statuses = {getattr(v, "http_status", 502) for v in values}
        status = 503 if statuses == {503} else (504 if 504 in statuses else 502)
        raise AllAttemptsFailed(
            f"Every consensus member failed ({errors}).",
            attempts=attempts,
            http_status=status,
            trace_id=trace.trace_id,
        )
    return await consensus_decide(
        trace, members, messages, aggregator=aggregator, judge_step=judge_step, first=first
    )


async def consensus_decide(
    trace: Trace,
    members: list[MemberOutcome],
    messages: Messages,
    *,
    aggregator: str,
    judge_step: Step | None = None,
    first: int | None = None,
) -> ConsensusResult:
    """The aggregate of members that have answered (at least one): the one place each
    aggregator's rule and its explanation live. `first` is the index of the member that
    answered first (for "fastest"); the judge, if any, is one more call on `trace`."""
    ok = [m for m in members if m.result is not None]
    if not ok:
        raise ValueError("consensus_decide needs at least one member that answered")
    judge: Result | None = None
    votes: dict[str, int] = {}
    failed = len(members) - len(ok)
    note = f" {failed} member(s) failed or were cancelled." if failed else ""
    if aggregator == "fastest":
        winner = members[first] if first is not None else ok[0]
        assert winner.result is not None
        how = f"{winner.model} answered first ({winner.result.latency_ms:.0f} ms); the others were cancelled."
    elif aggregator == "similarity":
        winner, how = similarity(members)
    elif aggregator == "judge" and judge_step is not None and len(ok) > 1:
        winner, votes, how, judge = await _judge(trace, judge_step, messages, members)
    else:
        winner, votes, how = majority(members)
        if aggregator == "judge":
            how = f"only one member answered, so no judging was needed: {how}"
    assert winner.result is not None
    return ConsensusResult(
        text=winner.result.text,
        model=winner.model,
        trace_id=trace.trace_id,
        aggregator=aggregator,
        explanation=how + note,
        members=members,
        votes=votes,
        judge=judge,
        cost_usd=_total_cost(members, judge),
    )


@dataclasses.dataclass(frozen=True)
class AnswerGroup:
    """Members whose answers are the same once folded as the majority aggregator folds them."""

    models: list[str]
    votes: int
    text: str  # the first member's answer, stripped


def answer_groups(members: list[MemberOutcome]) -> list[AnswerGroup]:
    """The answers grouped as `majority` counts them, the largest group first."""
    groups: dict[str, list[MemberOutcome]] = {}
    for m in members:
        if m.result is not None:
            groups.setdefault(normalize(m.result.text), []).append(m)
    ordered = sorted(groups.values(), key=lambda g: -len(g))
    return [
        AnswerGroup(
            models=[m.model for m in g], votes=len(g), text=g[0].result.text.strip() if g[0].result else ""
        )
        for g in ordered
    ]


async def _judge(
    trace: Trace, judge_step: Step, messages: Messages, members: list[MemberOutcome]
) -> tuple[MemberOutcome, dict[str, int], str, Result | None]:
    ok = [m for m in members if m.result is not None]
    answers = [m.result.text for m in ok if m.result is not None]
    try:
        # The caller's sampling options are for the members' answers: the judge must reply
        # {"best": n, …} whatever stop sequences or response format they asked for.
        # Likewise the chat options (tools, n, logprobs) and what they need of a model.
        judge_trace = dataclasses.replace(trace, sampling=NO_SAMPLING, chat=NO_CHAT_OPTIONS, needs=())
        verdict = await plan_run(judge_trace, [judge_step], judge_messages(messages, answers))
    except OrchestratorError as exc:
        winner, votes, how = majority(members)
        return (
            winner,
            votes,
            f"the judge {judge_step.model.name} failed ({exc.message}); majority decided: {how}",
            None,
        )
    parsed = judge_parse(verdict.text, len(ok))
    if parsed is None:
        winner, votes, how = majority(members)
        return (
            winner,
            votes,
            f"the judge {judge_step.model.name}'s reply named no answer; majority decided: {how}",
            verdict,
        )
    index, reason = parsed
    winner = ok[index]
    how = f"the judge {judge_step.model.name} chose {winner.model}'s answer" + (
        f": {reason}" if reason else "."
    )
    return winner, {}, how, verdict


async def _first_success(
    tasks: list[asyncio.Future[Result]],
) -> tuple[list[Result | BaseException], int | None]:
    pending = set(tasks)
    winner: asyncio.Future[Result] | None = None
    try:
        while pending and winner is None:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:  # in listed order: a simultaneous finish goes to the earlier model
                if task in done and not task.cancelled() and task.exception() is None:
                    winner = task
                    break
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    out: list[Result | BaseException] = []
    for task in tasks:
        if task.cancelled():
            out.append(asyncio.CancelledError())
        else:
            exc = task.exception()
            out.append(exc if exc is not None else task.result())
    return out, (tasks.index(winner) if winner is not None else None)
