"""Injected faults fail the engine's provider calls without reaching the transport or the provider."""

from __future__ import annotations

import asyncio
import functools

import pytest

from routing.engine.faults import (
    FaultSpec,
    fault_for,
    faulted_complete,
    faulted_stream,
    faults_active,
    inject_faults,
)
from routing.errors import TransientError
from routing.providers.base import StreamEnd
from routing.providers.transport import transport_complete
from tests.routing.providers import conftest as providers
from tests.routing.providers.conftest import request, run

# The provider tests' helpers, through the fault-injecting wrappers instead of the transport.
complete = functools.partial(providers.complete, via=faulted_complete)
stream = functools.partial(providers.stream, via=faulted_stream)
complete_error = functools.partial(providers.complete_error, via=faulted_complete)
stream_error = functools.partial(providers.stream_error, via=faulted_stream)


def test_a_rate_limit_fault_fails_without_calling_the_provider(fake_provider):
    with inject_faults({"gpt": FaultSpec("rate_limit", retry_after_s=3)}):
        error = complete_error(fake_provider.spec("openai"), request("m1"), model_name="gpt")

    assert type(error) is TransientError
    assert error.http_status == 429
    assert error.retry_after_s == 3
    assert error.latency_ms is not None
    assert fake_provider.history == []


def test_a_server_error_fault_is_a_500(fake_provider):
    with inject_faults({"gpt": FaultSpec("server_error")}):
        error = complete_error(fake_provider.spec("anthropic"), request("m1"), model_name="gpt")

    assert error.http_status == 500
    assert fake_provider.history == []


def test_a_timeout_fault_behaves_like_the_timeout_firing_but_waits_briefly(fake_provider):
    with inject_faults({"gpt": FaultSpec("timeout", max_wait_s=0.01)}):
        error = complete_error(fake_provider.spec("openai"), request("m1", timeout_s=60), model_name="gpt")
        _, stream_failure = stream_error(
            fake_provider.spec("openai"), request("m1", timeout_s=60), model_name="gpt"
        )

    assert error.timeout and "60 s" in str(error)
    assert stream_failure.timeout
    assert fake_provider.history == []


def test_a_stream_cut_fault_sends_some_tokens_then_fails(fake_provider):
    with inject_faults({"gpt": FaultSpec("stream_cut", after_tokens=2)}):
        items, error = stream_error(fake_provider.spec("openai"), request("m1"), model_name="gpt")

    assert len(items) == 2
    assert error.partial_text == "".join(items) == "This answer"
    assert error.output_tokens_so_far == 2
    assert error.latency_ms is not None
    assert fake_provider.history == []


def test_the_transport_chokepoint_itself_knows_nothing_of_faults(fake_provider):
    with inject_faults({"gpt": FaultSpec("server_error")}):
        completion = run(transport_complete(fake_provider.spec("openai"), request("m1"), model_name="gpt"))

    assert completion.text
    assert len(fake_provider.history) == 1


def test_a_stream_cut_fault_on_a_plain_call_is_transient(fake_provider):
    with inject_faults({"gpt": FaultSpec("stream_cut")}):
        error = complete_error(fake_provider.spec("openai"), request("m1"), model_name="gpt")

    assert type(error) is TransientError
    assert fake_provider.history == []


def test_other_models_and_calls_outside_the_block_are_untouched(fake_provider):
    spec = fake_provider.spec("openai")

    with inject_faults({"gpt": FaultSpec("server_error")}):
        assert complete(spec, request("m1"), model_name="claude").text
    assert complete(spec, request("m1"), model_name="gpt").text
    items = stream(spec, request("m1"), model_name="gpt")

    assert isinstance(items[-1], StreamEnd)
    assert len(fake_provider.history) == 3


def test_a_zero_rate_never_faults(fake_provider):
    with inject_faults({"gpt": FaultSpec("server_error", rate=0.0)}):
        assert complete(fake_provider.spec("openai"), request("m1"), model_name="gpt").text

    assert len(fake_provider.history) == 1


def test_a_partial_rate_faults_the_same_calls_each_time():
    def draws() -> list[bool]:
        with inject_faults({"gpt": FaultSpec("server_error", rate=0.5)}):
            return [fault_for("gpt") is not None for _ in range(40)]

    first = draws()

    assert first == draws()
    assert 5 < sum(first) < 35


def test_faults_reach_tasks_created_inside_the_block(fake_provider):
    spec = fake_provider.spec("openai")

    async def in_tasks() -> list:
        with inject_faults({"gpt": FaultSpec("rate_limit")}):
            tasks = [
                asyncio.create_task(faulted_complete(spec, request("m1"), model_name="gpt")) for _ in range(3)
            ]
            return await asyncio.gather(*tasks, return_exceptions=True)

    results = run(in_tasks())

    assert all(isinstance(r, TransientError) and r.http_status == 429 for r in results)
    assert fake_provider.history == []


def test_faults_active_lists_the_faults_in_force():
    spec = FaultSpec("timeout")

    with inject_faults({"a": spec}):
        assert faults_active() == {"a": spec}
    assert faults_active() == {}


@pytest.mark.parametrize(
    "kwargs",
    [{"kind": "explode"}, {"kind": "timeout", "rate": 1.5}, {"kind": "stream_cut", "after_tokens": -1}],
)
def test_a_bad_fault_spec_is_refused(kwargs):
    with pytest.raises(ValueError):
        FaultSpec(**kwargs)
