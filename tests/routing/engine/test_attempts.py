"""The attempt policy is one loop: the plain and the streamed path make the same attempts,
skip the same models for the same reasons and write the same call records."""

import pytest
from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from routing.engine.breaker import breaker_failure
from routing.engine.reset import engine_reset
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

MESSAGES = [{"role": "user", "content": "Say something useful."}]
RECORD_FIELDS = ("model_name", "attempt", "status", "error_class", "http_status", "chain_step", "role")


@pytest.fixture
def chain(fake_provider, settings, monkeypatch):
    """open (circuit open), locked (key unset), limited, refusing, last."""
    settings.ORCHESTRATOR = {
        **settings.ORCHESTRATOR,
        "RETRY_BASE_S": 0.01,
        "RETRY_MAX_DELAY_S": 0.001,  # every backoff is exactly this: no jitter to compare
        "BREAKER_FAILURES": 5,
    }
    monkeypatch.delenv("LOCKED_KEY", raising=False)
    locked = fake_provider.model(
        "locked", provider=fake_provider.provider(name="locked-p", api_key_env="LOCKED_KEY")
    )
    names = ["open", "limited", "refusing", "last"]
    models = {name: fake_provider.model(name) for name in names}
    return FallbackChainFactory(
        name="main", models=[models["open"], locked, models["limited"], models["refusing"], models["last"]]
    )


def scripted_failures(fake_provider):
    """The same state and script before each path runs."""
    engine_reset()
    fake_provider.server.reset()
    for _ in range(5):
        breaker_failure("open")
    fake_provider.script(
        "limited", Reply.rate_limit(retry_after_ms=20), Reply.server_error(), Reply.server_error(503)
    )
    fake_provider.script("refusing", Reply.model_not_found())
    fake_provider.script("last", Reply.ok("the answer"))


def plain(fake_provider):
    scripted_failures(fake_provider)
    return orchestrator.execute_with_fallback(MESSAGES, chain="main"), []


def streamed(fake_provider):
    scripted_failures(fake_provider)

    async def run():
        return [event async for event in orchestrator.astream(MESSAGES, chain="main")]

    events = async_to_sync(run)()
    done = events[-1]
    assert done.kind == "done"
    return done.result, events


def what_happened(fake_provider, result):
    orchestrator.records_flush()
    return {
        "text": result.text,
        "model": result.model,
        "attempts": [
            (a.model, a.attempt, a.status, a.error_class, a.http_status, a.wait_s) for a in result.attempts
        ],
        "skipped": [(s.model, s.category, s.chain_step) for s in result.skipped],
        "records": list(
            CallRecord.objects.filter(trace_id=result.trace_id).order_by("id").values_list(*RECORD_FIELDS)
        ),
        "requests": {name: len(fake_provider.requests_for(name)) for name in ("open", "limited", "refusing")},
    }


@pytest.mark.parametrize("retry_max", [0, 2])
def test_the_plain_and_the_streamed_path_make_the_same_attempts_skips_and_records(
    fake_provider, chain, settings, retry_max
):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": retry_max}

    plain_result, _ = plain(fake_provider)
    plain_story = what_happened(fake_provider, plain_result)
    streamed_result, events = streamed(fake_provider)
    streamed_story = what_happened(fake_provider, streamed_result)

    assert streamed_story == plain_story
    assert CallRecord.objects.filter(stream=True).count() == len(plain_story["records"])
    # The stream told its reader about the skipped models as it passed them.
    assert [(s.model, s.category) for e in events for s in e.skipped] == [
        ("open", "circuit"),
        ("locked", "key"),
    ]
    assert [e.error_class for e in events if e.kind == "attempt_failed"] == [
        a[3] for a in plain_story["attempts"][:-1]
    ]


def test_the_policy_retries_transient_errors_honours_retry_after_and_moves_on_from_the_rest(
    fake_provider, chain, settings
):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 2}

    result, _ = plain(fake_provider)
    story = what_happened(fake_provider, result)

    assert story["text"] == "the answer"
    assert story["attempts"] == [
        ("limited", 1, "error", "transient", 429, pytest.approx(0.02)),
        ("limited", 2, "error", "transient", 500, 0.001),
        ("limited", 3, "error", "transient", 503, None),
        ("refusing", 1, "error", "model_permanent", 404, None),
        ("last", 1, "ok", "", None, None),
    ]
    assert story["skipped"] == [("open", "circuit", 0), ("locked", "key", 1)]
    assert [r[:3] for r in story["records"]] == [(a[0], a[1], a[2]) for a in story["attempts"]]
    assert story["requests"] == {"open": 0, "limited": 3, "refusing": 1}
