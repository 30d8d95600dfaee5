"""The errors a plan ends with when nothing answered, and the skips it reports to callers."""

from __future__ import annotations

from routing.engine.selection import key_missing_error
from routing.engine.trace import Step, Trace
from routing.engine.types import AttemptInfo, SkipInfo
from routing.errors import AllAttemptsFailed, InvalidRequest, NoCandidate, ProviderError


def invalid_request(trace: Trace, model: str, exc: ProviderError) -> InvalidRequest:
    error = InvalidRequest(f"{model} rejected the request as invalid: {exc.message}")
    error.trace_id = trace.trace_id  # type: ignore[attr-defined]
    return error


def skips_of(skipped: dict[str, tuple[str, str]], steps: list[Step]) -> list[SkipInfo]:
    """The models a plan passed over, (category, reason) by name, as reported to callers."""
    chain_steps = {s.model.name: s.chain_step for s in steps}
    return [
        SkipInfo(model=name, category=category, reason=reason, chain_step=chain_steps.get(name))
        for name, (category, reason) in skipped.items()
    ]


def unsupported_error(trace: Trace, skipped: dict[str, tuple[str, str]]) -> InvalidRequest:
    """Every model of the plan refused the request's sampling or chat options: the caller's to fix."""
    reasons = "; ".join(why for _, why in skipped.values())
    return InvalidRequest(
        f"No model of the plan can honour the request's parameters ({reasons}).",
        param=next(iter(trace.refused.values()), None),
        code="unsupported_parameter",
    )


def all_failed(
    trace: Trace,
    attempts: list[AttemptInfo],
    skipped: dict[str, tuple[str, str]],
    last: ProviderError | None,
    steps: list[Step],
) -> Exception:
    """The error for a plan where nothing answered."""
    if not attempts:
        categories = {cat for cat, _ in skipped.values()}
        if categories == {"circuit"}:
            return AllAttemptsFailed(
                f"Every candidate's circuit is open: {', '.join(skipped)}.",
                http_status=503,
                trace_id=trace.trace_id,
            )
        if categories == {"key"}:
            models = {s.model.name: s.model for s in steps}
            return key_missing_error(models[n] for n in skipped)
        if categories == {"unsupported"}:
            return unsupported_error(trace, skipped)
        if categories == {"capability"}:
            detail = "; ".join(f"{name}: {why}" for name, (_, why) in skipped.items())
            return NoCandidate(
                f"No model of the plan has the capabilities this request needs "
                f"({', '.join(trace.needs)}): {detail}.",
                excluded={n: w for n, (_, w) in skipped.items()},
            )
        detail = "; ".join(f"{name}: {why}" for name, (_, why) in skipped.items())
        return NoCandidate(
            f"No model could be tried ({detail}).", excluded={n: w for n, (_, w) in skipped.items()}
        )
    tried = ", ".join(dict.fromkeys(a.model for a in attempts))
    last_text = f" Last error: {last.message}" if last is not None else ""
    skipped_text = (
        " Skipped: " + "; ".join(f"{name} ({why})" for name, (_, why) in skipped.items()) + "."
        if skipped
        else ""
    )
    status = 504 if last is not None and last.timeout else 502
    return AllAttemptsFailed(
        f"All {len(attempts)} attempts failed ({tried}).{last_text}{skipped_text}",
        attempts=attempts,
        http_status=status,
        trace_id=trace.trace_id,
    )
