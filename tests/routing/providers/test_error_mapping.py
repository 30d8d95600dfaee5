"""map_exception on SDK errors built the way the SDKs build them (httpx2 responses)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import anthropic
import httpx2
import openai
import pytest

from routing.errors import ModelPermanentError, RequestInvalidError, TransientError
from routing.providers.transport import map_exception

REQUEST = httpx2.Request("POST", "https://api.example.com/v1/chat/completions")


def openai_status_error(status: int, body: dict, headers: dict | None = None) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, json=body, request=REQUEST)
    client = openai.AsyncOpenAI(api_key="sk-x", base_url="https://api.example.com/v1")
    return client._make_status_error(f"Error code: {status}", body=body, response=response)


def anthropic_status_error(status: int, error_type: str, message: str) -> anthropic.APIStatusError:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    response = httpx2.Response(status, json=body, request=REQUEST)
    client = anthropic.AsyncAnthropic(api_key="sk-x")
    return client._make_status_error(f"Error code: {status}", body=body, response=response)


def test_retry_after_as_an_http_date_becomes_seconds():
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    error = map_exception(
        openai_status_error(429, {"error": {"message": "slow down"}}, {"retry-after": when})
    )

    assert type(error) is TransientError
    assert error.retry_after_s is not None and 20 < error.retry_after_s <= 30


def test_retry_after_ms_wins_over_retry_after():
    headers = {"retry-after": "9", "retry-after-ms": "250"}
    error = map_exception(openai_status_error(429, {"error": {"message": "slow down"}}, headers))

    assert error.retry_after_s == 0.25


@pytest.mark.parametrize("status", [408, 409, 502, 503, 504])
def test_retryable_statuses_are_transient(status):
    assert type(map_exception(openai_status_error(status, {"error": {"message": "x"}}))) is TransientError


def test_an_unprocessable_request_is_invalid():
    error = map_exception(openai_status_error(422, {"error": {"message": "messages: field required"}}))

    assert type(error) is RequestInvalidError
    assert "messages: field required" in str(error)


def test_azure_content_filter_codes_are_permanent():
    body = {
        "error": {
            "message": "filtered",
            "code": "content_filter",
            "innererror": {"code": "ResponsibleAIPolicyViolation"},
        }
    }

    assert type(map_exception(openai_status_error(400, body))) is ModelPermanentError


def test_anthropic_prompt_too_long_is_permanent():
    error = map_exception(
        anthropic_status_error(400, "invalid_request_error", "prompt is too long: 300000 tokens")
    )

    assert type(error) is ModelPermanentError
    assert "Context too long" in str(error)


def test_anthropic_overloaded_is_transient():
    error = map_exception(anthropic_status_error(529, "overloaded_error", "Overloaded"))

    assert type(error) is TransientError
    assert error.http_status == 529


def test_sdk_timeouts_are_transient_timeouts():
    error = map_exception(openai.APITimeoutError(request=REQUEST), timeout_s=3)

    assert type(error) is TransientError
    assert error.timeout
    assert "3 s" in str(error)


def test_raw_httpx2_transport_errors_are_transient():
    error = map_exception(httpx2.ReadError("connection reset by peer", request=REQUEST))

    assert type(error) is TransientError
    assert not error.timeout


def test_our_own_errors_pass_through_unchanged():
    original = ModelPermanentError("nope")

    assert map_exception(original) is original


def test_gemini_list_shaped_errors_are_read():
    body = [
        {
            "error": {
                "code": 400,
                "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
                "status": "INVALID_ARGUMENT",
            }
        }
    ]
    error = map_exception(openai_status_error(400, body))  # type: ignore[arg-type]

    assert type(error) is ModelPermanentError
    assert "1048576" in str(error)
