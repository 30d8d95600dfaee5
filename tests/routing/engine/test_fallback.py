"""Each error class → the right retry/fallback, through the real SDKs against the fake server."""

import pytest

from metrics.models import CallRecord
from routing import orchestrator
from routing.errors import AllAttemptsFailed, InvalidRequest
from routing.models import ChainStep
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

MESSAGES = [{"role": "user", "content": "Say something useful."}]


@pytest.fixture
def fast_retries(settings):
    settings.ORCHESTRATOR = {
        **settings.ORCHESTRATOR,
        "RETRY_BASE_S": 0.001,
        "RETRY_MAX_DELAY_S": 0.01,
        "RETRY_MAX": 2,
        "BREAKER_FAILURES": 100,
    }


@pytest.fixture
def chain(fake_provider, fast_retries):
    """Chain "main": primary (OpenAI wire) then backup (Anthropic wire)."""
    primary = fake_provider.model("primary", kind="openai")
    backup = fake_provider.model("backup", kind="anthropic")
    return FallbackChainFactory(name="main", models=[primary, backup])


def statuses(result_or_error):
    return [(a.model, a.status) for a in result_or_error.attempts]


def test_it_retries_a_429_on_the_same_model_then_answers(fake_provider, chain):
    fake_provider.script("primary", Reply.rate_limit(), Reply.ok("after the limit"))

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert result.text == "after the limit"
    assert result.model == "primary"
    assert statuses(result) == [("primary", "error"), ("primary", "ok")]
    assert len(fake_provider.requests_for("backup")) == 0


def test_it_honours_retry_after_when_it_is_within_the_cap(fake_provider, chain):
    fake_provider.script("primary", Reply.rate_limit(retry_after_ms=30), Reply.ok("waited"))

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert result.text == "waited"
    assert result.attempts[0].wait_s == pytest.approx(0.03)
    assert len(fake_provider.requests_for("primary")) == 2


def test_it_moves_on_at_once_when_retry_after_is_beyond_the_cap(fake_provider, chain, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_AFTER_CAP_S": 5}
    fake_provider.script("primary", Reply.rate_limit(retry_after=120))

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert result.model == "backup"
    assert len(fake_provider.requests_for("primary")) == 1
    assert result.attempts[0].wait_s is None


def test_it_falls_back_after_5xx_retries_run_out(fake_provider, chain):
    fake_provider.script("primary", Reply.server_error(), Reply.server_error(502), Reply.server_error(503))

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert result.model == "backup"
    assert statuses(result) == [
        ("primary", "error"),
        ("primary", "error"),
        ("primary", "error"),
        ("backup", "ok"),
    ]
    assert [a.attempt for a in result.attempts] == [1, 2, 3, 1]
    assert [a.chain_step for a in result.attempts] == [0, 0, 0, 1]


def test_it_retries_a_connection_reset(fake_provider, chain):
    fake_provider.script("primary", Reply.reset(), Reply.ok("reconnected"))

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert result.text == "reconnected"
    assert result.attempts[0].error_class == "transient"


@pytest.mark.parametrize(
    "reply",
    [
        Reply.unauthorized(),
        Reply.forbidden(),
        Reply.model_not_found(),
        Reply.context_length(),
        Reply.content_filter(),
    ],
    ids=["401", "403", "404-model", "context-length", "content-filter"],
)
def test_it_moves_to_the_next_model_without_retry_on_a_model_permanent_error(fake_provider, chain, reply):
    fake_provider.script("primary", reply)

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert result.model == "backup"
    assert len(fake_provider.requests_for("primary")) == 1
    assert result.attempts[0].error_class == "model_permanent"


def test_it_fails_at_once_on_a_request_invalid_error(fake_provider, chain):
    fake_provider.script("primary", Reply.bad_request("Invalid value for 'temperature'."))

    with pytest.raises(InvalidRequest, match="temperature"):
        orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert len(fake_provider.requests_for("backup")) == 0
    record = CallRecord.objects.get()
    assert (record.status, record.error_class, record.http_status) == ("error", "request_invalid", 400)


def test_a_hang_past_the_step_timeout_is_recorded_as_a_timeout_and_fails_over_at_once(fake_provider, chain):
    step = ChainStep.objects.get(chain=chain, position=0)
    step.timeout_s = 0.3
    step.save()
    fake_provider.script("primary", Reply.hang(5))

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert result.model == "backup"
    assert [a.status for a in result.attempts] == ["timeout", "ok"]
    assert CallRecord.objects.get(model_name="primary").status == "timeout"


def test_a_timeout_on_the_last_model_left_is_retried(fake_provider, fast_retries):
    fake_provider.model("only")
    from routing.models import ModelConfig

    chain = FallbackChainFactory(name="solo", models=[ModelConfig.objects.get(name="only")])
    step = chain.steps.get()
    step.timeout_s = 0.3
    step.save()
    fake_provider.script("only", Reply.hang(5), Reply.ok("patience"))

    result = orchestrator.execute_with_fallback(MESSAGES, chain="solo")

    assert result.text == "patience"
    assert [a.status for a in result.attempts] == ["timeout", "ok"]


def test_it_answers_504_when_the_last_failure_was_a_timeout(fake_provider, chain, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0}
    ChainStep.objects.filter(chain=chain).update(timeout_s=0.3)
    fake_provider.script("primary", Reply.server_error())
    fake_provider.script("backup", Reply.hang(5))

    with pytest.raises(AllAttemptsFailed) as caught:
        orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert caught.value.http_status == 504
    assert [(a.model, a.status) for a in caught.value.attempts] == [
        ("primary", "error"),
        ("backup", "timeout"),
    ]


def test_it_answers_502_with_every_attempt_when_all_fail(fake_provider, chain, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0}
    fake_provider.script("primary", Reply.server_error())
    fake_provider.script("backup", Reply.unauthorized())

    with pytest.raises(AllAttemptsFailed) as caught:
        orchestrator.execute_with_fallback(MESSAGES, chain="main")

    error = caught.value
    assert error.http_status == 502
    assert [a.model for a in error.attempts] == ["primary", "backup"]
    records = CallRecord.objects.filter(trace_id=error.trace_id)
    assert records.count() == 2
    assert {r.role for r in records} == {"primary", "fallback"}


def test_the_explicit_model_goes_first_then_the_chain(fake_provider, chain):
    fake_provider.model("solo", kind="openai")
    fake_provider.script("solo", Reply.model_not_found())

    result = orchestrator.complete(MESSAGES, model="solo", chain="main")

    assert [a.model for a in result.attempts] == ["solo", "primary"]


@pytest.mark.parametrize("kind", ["openai", "azure_openai", "anthropic", "openai_compatible"])
def test_every_wire_answers_and_is_recorded_with_its_kind(fake_provider, fast_retries, kind):
    fake_provider.model("x", kind=kind, model_id="deploy-x")
    fake_provider.script("deploy-x", Reply.server_error(), Reply.ok("over the wire"))

    result = orchestrator.complete(MESSAGES, model="x")

    assert result.text == "over the wire"
    assert list(
        CallRecord.objects.order_by("id").values_list("provider_kind", "provider_model_id", "status")
    ) == [
        (kind, "deploy-x", "error"),
        (kind, "deploy-x", "ok"),
    ]


def test_injected_faults_make_the_chain_fall_back_without_calling_the_model(fake_provider, chain):
    from routing.engine.faults import FaultSpec, inject_faults

    with inject_faults({"primary": FaultSpec("server_error")}):
        result = orchestrator.execute_with_fallback(MESSAGES, chain="main", source="drill")

    assert result.model == "backup"
    assert len(fake_provider.requests_for("primary")) == 0
    assert (
        list(CallRecord.objects.filter(model_name="primary").values_list("status", "http_status"))
        == [("error", 500)] * 3
    )
