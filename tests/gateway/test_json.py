"""The gateway reads request bodies and writes chat completions through orjson: what it reads
and the 400s it gives are json's, input by input (gateway/validation.py `json_parse`,
gateway/http.py `json_encode`)."""

from __future__ import annotations

import json
import math

import pytest

from gateway.chat import ChunkWriter, sse_event
from gateway.errors import GatewayError
from gateway.http import json_encode
from gateway.validation import json_parse

ACCEPTED = {
    "an object": b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}',
    "duplicate keys (the last wins)": b'{"a": 1, "a": 2}',
    "an escaped NUL": b'{"a": "\\u0000"}',
    "a surrogate pair": b'{"a": "\\ud83d\\ude00"}',
    "an integer beyond 64 bits": b'{"seed": 123456789012345678901234567890}',
    "an integer just below the 64-bit range": b'{"seed": -9223372036854775809}',
    "the largest unsigned 64-bit integer": b'{"seed": 18446744073709551615}',
    "NaN and infinities (json takes them; validation names them)": b'{"t": NaN, "u": Infinity, "v": -Infinity}',
    "an overflowing float": b'{"t": 1e400}',
    "whitespace around": b' \t{"a": true}\r\n',
    "non-ASCII text": '{"a": "Grüße 東京 🎉"}'.encode(),
}


def _same(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    return type(left) is type(right) and left == right


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_a_body_json_reads_is_read_the_same(name):
    body = ACCEPTED[name]

    assert _same(json_parse(body), json.loads(body.decode()))


REFUSED = {
    "invalid UTF-8": (b'{"a": "\xff"}', "The request body is not valid UTF-8 (byte 7)."),
    "a raw NUL in a string": (
        b'{"a": "\x00"}',
        "The request body is not valid JSON: Invalid control character at at line 1 column 8.",  # json's own wording
    ),
    "a trailing comma": (b"[1,]", "The request body is not valid JSON: Expecting value at line 1 column 4."),
    "two documents": (
        b'{"a":1}{"b":2}',
        "The request body is not valid JSON: Extra data at line 1 column 8.",
    ),
    "a byte-order mark": (
        b'\xef\xbb\xbf{"a": 1}',
        "The request body is not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig) at line 1 column 1.",
    ),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "The request body is nested too deeply."),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_body_json_refuses_gets_json_s_message(name):
    body, message = REFUSED[name]

    with pytest.raises(GatewayError) as caught:
        json_parse(body)

    assert caught.value.status == 400
    assert caught.value.message == message


def test_a_lone_surrogate_is_still_a_400_naming_the_field():
    with pytest.raises(GatewayError) as caught:
        json_parse(b'{"model": "m", "user": "half \\ud800"}')

    assert caught.value.status == 400
    assert caught.value.param == "user"


def test_a_completion_is_written_as_compact_utf8_json():
    payload = {"id": "c1", "choices": [{"message": {"content": "Grüße 🎉", "refusal": None}}], "n": 2**63}

    encoded = json_encode(payload)

    assert json.loads(encoded) == payload
    assert "Grüße 🎉".encode() in encoded


@pytest.mark.parametrize(
    "value", ["half \ud800", 2**70], ids=["a lone surrogate", "an integer beyond 64 bits"]
)
def test_what_orjson_cannot_write_is_written_by_json_as_before(value):
    assert json_encode({"a": value}) == json.dumps({"a": value}).encode()


STREAMED_TEXTS = ["plain", "Grüße 東京 🎉", 'quotes " and \\ and \n newlines', "a lone \ud800 surrogate"]


@pytest.mark.parametrize("model", ["bench-model", "modèle-東京"])
@pytest.mark.parametrize("text", STREAMED_TEXTS)
def test_a_streamed_chunk_is_the_json_of_the_whole_chunk_for_any_text_and_model(model, text):
    chunks = ChunkWriter("chatcmpl-t", 1_700_000_000, model)
    event = chunks.content(text)
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    expected = {
        "id": "chatcmpl-t",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}],
    }
    assert json.loads(event[6:]) == expected
    if "\ud800" not in text:  # sse_event writes a lone surrogate through json, escaped
        assert json.loads(sse_event(expected)[6:]) == expected


def test_an_sse_event_orjson_cannot_write_is_written_by_json():
    event = sse_event({"error": {"message": "bad \ud800 text", "seed": 123456789012345678901234567890}})
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    assert json.loads(event[6:]) == {
        "error": {"message": "bad \ud800 text", "seed": 123456789012345678901234567890}
    }
