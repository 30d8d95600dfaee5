"""The chokepoint's own guard: a request whose text cannot be encoded (one that got past the
engine's checks) fails as request-invalid and local, and nothing reaches the provider."""

import pytest

from routing.errors import RequestInvalidError
from tests.routing.providers.conftest import complete_error, request, stream_error

LONE_SURROGATE = [{"role": "user", "content": "x\ud800y"}]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_plain_call_fails_locally_without_reaching_the_provider(fake_provider, kind):
    error = complete_error(fake_provider.spec(kind), request("m1", messages=LONE_SURROGATE))

    assert isinstance(error, RequestInvalidError) and error.local
    assert "could not be sent" in error.message
    assert fake_provider.requests_for("m1") == []


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_stream_fails_locally_without_reaching_the_provider(fake_provider, kind):
    items, error = stream_error(fake_provider.spec(kind), request("m1", messages=LONE_SURROGATE))

    assert items == []
    assert isinstance(error, RequestInvalidError) and error.local
    assert fake_provider.requests_for("m1") == []
