"""How OpenAI-style streams are read: the SSE body as a provider writes it, byte for byte
(`Reply.raw_stream`), through the real SDK clients against the fake server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from routing.engine.types import Usage
from routing.errors import ModelPermanentError, TransientError
from routing.providers.base import StreamEnd
from tests.fake_provider import Reply
from tests.routing.providers.conftest import request, run, stream, stream_error

OPENAI_KINDS = ["openai", "azure_openai", "openai_compatible"]
# Far longer than the scheduler needs to hand each piece to the client on its own.
APART = 0.05


def event(content: str | None = None, *, finish: str | None = None, usage: dict | None = None) -> str:
    """One chat completion chunk as an SSE event (the OpenAI wire format)."""
    payload: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m1"}
    if usage is not None:
        payload.update(choices=[], usage=usage)
    else:
        delta = {} if content is None else {"content": content}
        payload["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


USAGE = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
DONE = "data: [DONE]\n\n"


@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_a_data_line_split_across_network_reads_is_read_whole(fake_provider, kind):
    line = event("Bonjour ☕").encode()
    cut = line.index("☕".encode()) + 1  # inside the line, and inside a UTF-8 character
    fake_provider.script(
        "m1",
        Reply.raw_stream(
            line[:cut], line[cut:], event(finish="stop"), event(usage=USAGE), DONE, interval_s=APART
        ),
    )

    items = stream(fake_provider.spec(kind), request("m1"))

    assert items[:-1] == ["Bonjour ☕"]
    end = items[-1]
    assert isinstance(end, StreamEnd)
    assert (end.finish_reason, end.usage) == ("stop", Usage(input_tokens=7, output_tokens=2))


def test_crlf_and_cr_line_ends_and_comments_are_read_like_lf(fake_provider):
    # An event may spread its JSON over several data lines (joined with a line feed).
    head, tail = event("one").removesuffix("\n\n").split(', "choices"')
    spread = f'{head},\r\ndata: "choices"{tail}\r\n\r\n'
    fake_provider.script(
        "m1",
        Reply.raw_stream(
            ": keep-alive\r\n\r\n",
            spread[: spread.index("\n")],  # ends with CR; its LF arrives in the next read
            spread[spread.index("\n") :],
            event(" two").replace("\n", "\r"),
            "event: message\nid: 7\n" + event(finish="stop"),
            DONE,
            interval_s=APART,
        ),
    )

    items = stream(fake_provider.spec("openai"), request("m1"))

    assert items[:-1] == ["one", " two"]
    assert isinstance(items[-1], StreamEnd) and items[-1].finish_reason == "stop"


@pytest.mark.parametrize("kind", ["openai", "azure_openai"])
def test_an_unreadable_event_before_any_text_is_transient(fake_provider, kind):
    fake_provider.script("m1", Reply.raw_stream("data: {not json\n\n", event("late"), DONE))

    items, error = stream_error(fake_provider.spec(kind), request("m1"))

    assert items == []
    assert type(error) is TransientError
    assert "could not read" in error.message and "{not json" in error.message
    assert error.partial_text == ""


def test_an_unreadable_event_after_text_fails_with_the_partial_text(fake_provider):
    fake_provider.script(
        "m1", Reply.raw_stream(event("Hello"), event(" there"), "data: <html>busy</html>\n\n", DONE)
    )

    items, error = stream_error(fake_provider.spec("openai"), request("m1"))

    assert items == ["Hello", " there"]
    assert type(error) is TransientError
    assert error.partial_text == "Hello there"


def test_done_without_a_finish_reason_is_transient(fake_provider):
    fake_provider.script("m1", Reply.raw_stream(event("Hi"), event(usage=USAGE), DONE))

    items, error = stream_error(fake_provider.spec("openai"), request("m1"))

    assert items == ["Hi"]
    assert type(error) is TransientError
    assert "before the model finished" in error.message
    assert error.partial_text == "Hi"


def test_a_body_that_ends_without_done_after_the_finish_still_succeeds(fake_provider):
    fake_provider.script("m1", Reply.raw_stream(event("Hi"), event(finish="length")))

    items = stream(fake_provider.spec("openai"), request("m1"))

    assert items[:-1] == ["Hi"]
    end = items[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "length"
    assert end.usage.output_tokens == 1  # no usage chunk: one per delta, counted by the transport


def test_a_content_filter_finish_is_model_permanent(fake_provider):
    fake_provider.script("m1", Reply.raw_stream(event("Well"), event(finish="content_filter"), DONE))

    items, error = stream_error(fake_provider.spec("openai"), request("m1"))

    assert items == ["Well"]
    assert type(error) is ModelPermanentError
    assert error.partial_text == "Well"


def test_an_error_event_about_the_context_length_is_model_permanent(fake_provider):
    error_event = {
        "error": {"message": "Too long.", "type": "invalid_request_error", "code": "context_length_exceeded"}
    }
    fake_provider.script("m1", Reply.raw_stream(f"data: {json.dumps(error_event)}\n\n"))

    items, error = stream_error(fake_provider.spec("openai"), request("m1"))

    assert items == []
    assert type(error) is ModelPermanentError
    assert "Too long." in error.message


def test_choices_other_than_the_first_and_empty_deltas_are_skipped(fake_provider):
    other = {"choices": [{"index": 1, "delta": {"content": "other"}, "finish_reason": None}]}
    role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]}
    fake_provider.script(
        "m1",
        Reply.raw_stream(
            f"data: {json.dumps(role)}\n\n",
            f"data: {json.dumps(other)}\n\n",
            event("mine"),
            event(finish="stop"),
        ),
    )

    items = stream(fake_provider.spec("openai"), request("m1"))

    assert items[:-1] == ["mine"]


def test_a_provider_that_keeps_the_body_open_after_done_does_not_hold_the_answer(fake_provider):
    fake_provider.script("m1", Reply.raw_stream(event("Hi"), event(finish="stop"), DONE, hold_open_s=30))

    items = stream(fake_provider.spec("openai"), request("m1", timeout_s=20))

    end = items[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "stop"
    assert end.latency_ms < 10_000  # not the request's timeout, not the 30 s the server idles
    assert fake_provider.wait_for(lambda h: h and h[0].disconnected)


def test_a_finished_stream_leaves_its_connection_for_the_next_call(fake_provider):
    assert _connections_for_two_streams(fake_provider) == 1


def test_a_finished_stream_leaves_its_connection_on_the_httpx_layer_too(fake_provider, httpx_layer):
    assert _connections_for_two_streams(fake_provider) == 1


def _connections_for_two_streams(fake_provider) -> int:
    spec = fake_provider.spec("openai")

    async def two_streams() -> None:
        from routing.providers.transport import transport_stream

        for _ in range(2):
            async for _item in transport_stream(spec, request("m1"), model_name="m1"):
                pass

    run(two_streams())
    assert [r.completed for r in fake_provider.history] == [True, True]
    return len({r.connection for r in fake_provider.history})


@pytest.mark.parametrize("reply", [Reply.stream_cut(after_tokens=2), Reply.stream_error(after_tokens=2)])
def test_the_httpx_layer_maps_a_failure_midstream_the_same_way(fake_provider, httpx_layer, reply):
    fake_provider.script("m1", reply)

    items, error = stream_error(fake_provider.spec("openai"), request("m1"))

    assert len(items) == 2
    assert type(error) is TransientError
    assert not error.timeout
    assert error.partial_text == "".join(items)
