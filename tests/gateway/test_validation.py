"""Bad chat input through the official `openai` client: each a 400 (or a 413 for a body over
the limit) in OpenAI's shape naming the field, before anything is sent or recorded."""

import base64

import openai
import pytest

from gateway.services import api_key_create
from metrics.models import CallRecord
from routing.messages import IMAGE_MAX_BYTES

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_url) -> openai.OpenAI:
    raw = api_key_create(name="app")[1]
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw, max_retries=0, timeout=30)


@pytest.fixture
def alpha(fake_provider):
    return fake_provider.model("alpha", capabilities=["tool_use", "vision"])


def _image(url: str) -> list[dict]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": url}}],
        }
    ]


def _data_uri(size: int) -> str:
    return "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"\0" * (size - 4)).decode()


CALLED = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
}


@pytest.mark.parametrize(
    ("messages", "param", "needle"),
    [
        (
            [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_9", "content": "42"}],
            "messages[1].tool_call_id",
            "answers no tool call",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                CALLED,
                {"role": "tool", "tool_call_id": "call_2", "content": "4"},
            ],
            "messages[2].tool_call_id",
            "'call_2'",
        ),
        (
            _image("ftp://example.com/cat.png"),
            "messages[0].content[1].image_url.url",
            "http(s) URL or a data URI",
        ),
        (_image("file:///etc/passwd"), "messages[0].content[1].image_url.url", "'file'"),
        (
            _image("data:text/html;base64,PGI+"),
            "messages[0].content[1].image_url.url",
            "media type 'text/html'",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}],
                }
            ],
            "messages[0].content[0].type",
            "'input_audio' is not supported",
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x.y/z.png"}}],
                }
            ],
            "messages[0].content[0].type",
            "assistant message",
        ),
        ([{"role": "function", "name": "f", "content": "x"}], "messages[0].role", "must be one of"),
    ],
)
def test_bad_messages_are_a_400_naming_the_field(client, alpha, fake_provider, messages, param, needle):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="alpha", messages=messages)
    error = refused.value.body
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert needle in error["message"]
    assert fake_provider.requests_for("alpha") == [] and not CallRecord.objects.exists()


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function.name"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "function", "function": {"name": "g"}},
            },
            "tool_choice.function.name",
        ),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"logprobs": True, "stream": True}, "logprobs"),
    ],
)
def test_bad_chat_options_are_a_400_naming_the_field(client, alpha, fields, param):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="alpha", messages=[{"role": "user", "content": "hi"}], **fields)
    assert refused.value.body["param"] == param


def test_a_20_mb_data_uri_is_refused_with_413_before_it_is_read(client, alpha, fake_provider):
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="alpha", messages=_image(_data_uri(15_000_000)))
    assert refused.value.status_code == 413
    assert refused.value.body["code"] == "request_too_large"
    assert fake_provider.requests_for("alpha") == []


def test_an_image_at_the_image_limit_fits_the_default_body_limit(client, alpha, fake_provider):
    """The body limit leaves room for the largest image the parser accepts, base64-encoded."""
    answer = client.chat.completions.create(model="alpha", messages=_image(_data_uri(IMAGE_MAX_BYTES - 1024)))
    assert answer.choices[0].message.content
    (sent,) = fake_provider.requests_for("alpha")
    assert len(sent.images()) == 1


def test_an_image_over_the_image_limit_within_the_body_limit_is_a_400(client, alpha, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "GATEWAY_MAX_BODY_BYTES": 12_000_000}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="alpha", messages=_image(_data_uri(IMAGE_MAX_BYTES + 1024)))
    error = refused.value.body
    assert (error["param"], error["code"]) == ("messages[0].content[1].image_url.url", "image_too_large")


def test_an_image_for_a_model_without_vision_is_a_400_that_says_so(client, fake_provider):
    fake_provider.model("textonly")
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="textonly", messages=_image("https://example.com/cat.png"))
    assert "vision" in refused.value.message
    assert fake_provider.requests_for("textonly") == []
