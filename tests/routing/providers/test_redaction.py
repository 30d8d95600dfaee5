"""Provider secrets an upstream echoes in its error body reach no caller, record, page, log or spool."""

import logging

import httpx
import pytest

from gateway.services import api_key_create
from metrics.models import CallRecord
from routing import orchestrator
from routing.errors import AllAttemptsFailed
from routing.orchestrator import records_flush
from routing.providers.redaction import REDACTED, secrets_redact
from tests.fake_provider import FAKE_KEY_ENV, Reply

# Not shaped like any credential: only knowing the value sent can remove it.
SECRET = "plain-secret-value-42"


@pytest.mark.parametrize(
    "text",
    [
        "Rejected credentials: Bearer abcdef123456",
        # Built from pieces so the repository holds nothing shaped like a real key.
        "Incorrect API key provided: " + "sk-" + "proj-abcdef1234567890.",
        "key " + "sk-" + "ant-api03-abcdefghijklmnop was revoked",
        "API key not valid: " + "AI" + "zaSyA1234567890abcdefghijklmnopq",
        '{"api-key": "0123456789abcdef"}',
        "x-api-key: 0123456789abcdef",
        "authorization=Basic dXNlcjpwYXNzd29yZA==",
    ],
)
def test_credential_shaped_text_is_redacted(text):
    redacted = secrets_redact(text)

    assert REDACTED in redacted
    assert not any(part in redacted for part in ("abcdef123456", "1234567890", "0123456789", "dXNlcjpw"))


def test_the_value_of_a_named_key_variable_is_redacted_wherever_it_appears(monkeypatch):
    monkeypatch.setenv("MY_PROVIDER", SECRET)

    assert secrets_redact(f"got {SECRET}!", env_names=["MY_PROVIDER"]) == f"got {REDACTED}!"


def test_ordinary_error_text_is_left_alone():
    text = "The model `gpt-x` does not exist; Authorization header missing; api-key required."

    assert secrets_redact(text) == text


@pytest.fixture
def secret_key(fake_provider, monkeypatch, settings, tmp_path):
    """The fake provider's key is SECRET; every record is spooled to tmp_path until flushed."""
    monkeypatch.setenv(FAKE_KEY_ENV, SECRET)
    settings.VAR_DIR = tmp_path
    settings.ORCHESTRATOR = {
        **settings.ORCHESTRATOR,
        "RECORD_SPOOL": True,
        "RECORD_FLUSH_INTERVAL_S": 3600,
        "RETRY_MAX": 0,
    }
    return SECRET


def spooled(tmp_path) -> str:
    return "".join(p.read_text() for p in tmp_path.glob("record-spool/*/*.seg"))


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["openai", "anthropic", "azure_openai"])
def test_an_echoed_key_is_not_in_the_error_the_record_the_spool_or_the_log(
    fake_provider, secret_key, tmp_path, caplog, kind
):
    caplog.set_level(logging.DEBUG)
    fake_provider.model("m1", kind=kind)
    fake_provider.script("m1", Reply.echo_auth())

    with pytest.raises(AllAttemptsFailed) as caught:
        orchestrator.complete([{"role": "user", "content": "hi"}], model="m1")

    (received,) = fake_provider.requests_for("m1")
    assert SECRET in " ".join(received.headers.values())  # it was sent, and echoed back
    error = caught.value
    assert "Rejected credentials: " in error.message
    assert SECRET not in error.message and SECRET not in str(error.to_dict())
    assert SECRET not in spooled(tmp_path)
    records_flush()
    (record,) = CallRecord.objects.all()
    assert REDACTED in record.error_message and SECRET not in record.error_message
    assert SECRET not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_an_echoed_key_is_not_in_the_gateway_answer_nor_the_call_page(
    live_url, fake_provider, secret_key, tmp_path, caplog, member_client
):
    caplog.set_level(logging.DEBUG)
    fake_provider.model("alpha", kind="openai")
    fake_provider.script("alpha", Reply.echo_auth(), Reply.echo_auth())
    _, raw = api_key_create(name="app")
    body = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}]}

    plain = httpx.post(
        f"{live_url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {raw}"}
    )
    streamed = httpx.post(
        f"{live_url}/v1/chat/completions",
        json={**body, "stream": True},
        headers={"authorization": f"Bearer {raw}"},
    )

    assert plain.status_code == 502
    assert "Rejected credentials" in plain.text and SECRET not in plain.text
    assert "Rejected credentials" in streamed.text and SECRET not in streamed.text
    assert SECRET not in spooled(tmp_path)
    records_flush()
    records = list(CallRecord.objects.filter(model_name="alpha"))
    assert len(records) == 2
    for record in records:
        page = member_client.get(f"/calls/{record.id}/")
        assert page.status_code == 200
        assert b"Rejected credentials" in page.content and SECRET.encode() not in page.content
    assert SECRET not in caplog.text
