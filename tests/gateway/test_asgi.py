"""The lean ASGI front, driven in-process with hand-made ASGI messages."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync

from gateway.asgi import STREAM_AHEAD, gateway_front, responses_wait, stream_send
from gateway.errors import GatewayError
from gateway.keys import KeyInfo
from gateway.limits import limits_admit
from gateway.services import api_key_create

pytestmark = pytest.mark.django_db


async def _inner(scope, receive, send):
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


def call(path: str, *, method: str = "POST", headers=(), chunks=(b"",), disconnect: bool = False):
    app = gateway_front(_inner)
    scope = {
        "type": "http",
        "path": path,
        "method": method,
        "headers": [(k.encode(), v.encode()) for k, v in headers],
    }
    incoming = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    if disconnect:
        incoming = incoming[:1] + [{"type": "http.disconnect"}]
        incoming[0]["more_body"] = True
    reads = []
    sent = []

    async def receive():
        reads.append(1)
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async_to_sync(app)(scope, receive, send)
    return sent, len(reads)


def status_and_body(sent):
    status = sent[0]["status"] if sent else None
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, body


def test_other_paths_go_to_django():
    sent, _ = call("/admin/", method="GET")
    assert status_and_body(sent) == (299, b"django")


def test_a_declared_oversized_body_is_refused_without_reading_it(api_key, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "GATEWAY_MAX_BODY_BYTES": 100}
    sent, reads = call(
        "/v1/chat/completions",
        headers=[("content-length", "5000"), ("authorization", f"Bearer {api_key[1]}")],
    )
    status, body = status_and_body(sent)
    assert (status, reads) == (413, 0)
    assert json.loads(body)["error"]["code"] == "request_too_large"


def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives(api_key, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "GATEWAY_MAX_BODY_BYTES": 100}
    sent, reads = call(
        "/v1/chat/completions", headers=[("authorization", f"Bearer {api_key[1]}")], chunks=[b"x" * 60] * 10
    )
    assert status_and_body(sent)[0] == 413
    assert reads == 2  # stopped at the chunk that crossed the limit


def test_a_client_that_leaves_while_sending_gets_no_answer(api_key):
    sent, _ = call(
        "/v1/chat/completions", headers=[("authorization", f"Bearer {api_key[1]}")], disconnect=True
    )
    assert sent == []


def test_a_body_in_several_chunks_is_joined(api_key):
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 50}).encode()
    sent, _ = call(
        "/v1/chat/completions",
        headers=[("authorization", f"Bearer {api_key[1]}")],
        chunks=[body[:10], body[10:30], body[30:]],
    )
    status, payload = status_and_body(sent)
    assert status == 400 and json.loads(payload)["error"]["param"] == "n"


def test_wrong_methods_and_trailing_slashes(api_key):
    auth = [("authorization", f"Bearer {api_key[1]}")]
    assert status_and_body(call("/v1/chat/completions", method="GET", headers=auth)[0])[0] == 405
    assert status_and_body(call("/v1/models/", method="GET", headers=auth)[0])[0] == 200
    assert status_and_body(call("/v1/models", method="DELETE", headers=auth)[0])[0] == 405


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_an_unknown_v1_path_is_answered_here_with_a_json_404(api_key, method):
    sent, reads = call("/v1/audio/speech", method=method, headers=[("authorization", f"Bearer {api_key[1]}")])
    status, body = status_and_body(sent)
    assert (status, reads) == (404, 0)  # not Django's page, and the body is never read
    assert dict(sent[0]["headers"])[b"content-type"] == b"application/json"
    error = json.loads(body)["error"]
    assert (error["type"], error["code"], error["param"]) == ("not_found_error", "unknown_url", None)
    assert error["message"].startswith(f"Invalid URL ({method} /v1/audio/speech)")


def test_v1_itself_is_the_gateways_and_v1something_is_not():
    assert status_and_body(call("/v1", method="GET")[0])[0] == 404
    assert status_and_body(call("/v1beta/models", method="GET")[0]) == (299, b"django")


def receive_once(body: bytes):
    """A connection's receive: the request's body, then nothing until the client leaves
    (which it does not: the server ends the application)."""
    bodies = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if bodies:
            return bodies.pop()
        await asyncio.Event().wait()

    return receive


def serve_then_admit(*, stream: bool, send_of):
    """One chat request through the front, by a key whose first request reserves all of its
    tokens per minute, with the connection's send made by `send_of(drop)` (`drop` cancels the
    application, as a server may); then the key's next admission, which an unsettled first
    request would leave refused."""
    key, raw = api_key_create(name="app", tpm=1_000)
    request = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    scope = {
        "type": "http",
        "path": "/v1/chat/completions",
        "method": "POST",
        "headers": [(b"authorization", f"Bearer {raw}".encode())],
    }

    async def run():
        app = gateway_front(_inner)
        task = asyncio.ensure_future(
            app(scope, receive_once(json.dumps(request).encode()), send_of(lambda: task.cancel()))
        )
        await asyncio.gather(task, return_exceptions=True)
        await responses_wait()
        return await limits_admit(info=KeyInfo.from_model(key))

    try:
        return async_to_sync(run)()
    except GatewayError as refused:  # the first request's reservation was never settled
        pytest.fail(f"the second request was refused: {refused}")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_the_spend_settles_even_when_the_server_cancels_the_application_after_the_body(fake_provider, stream):
    """Servers differ in what they do once the response is complete: uvicorn waits for the
    application to return, granian reads the connection's next request at once, and a server
    may cancel the application (here: as the last body message is written, so the cancellation
    lands on the application's next wait, the settlement's round trip to Redis). The settlement
    runs on its own either way."""
    fake_provider.model("alpha")
    sent = []

    def send_of(drop):
        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                drop()  # the response is complete: the server drops the application

        return send

    second = serve_then_admit(stream=stream, send_of=send_of)
    assert status_and_body(sent)[0] == 200
    assert second.checked


def test_a_stream_the_client_never_received_gives_its_reservation_back(fake_provider):
    """The connection fails as the response starts: the stream's body is never sent, yet its
    reservation is given back."""
    fake_provider.model("alpha")
    sent: list[str] = []

    def send_of(drop):
        async def send(message):
            sent.append(message["type"])
            raise OSError("connection reset")

        return send

    second = serve_then_admit(stream=True, send_of=send_of)
    assert sent == ["http.response.start"]
    assert second.checked


# -- A streamed body: what is ready goes out together, nothing waits for more ------------


class Client:
    """The server's side of one streamed response: the ASGI messages sent, a disconnect on
    demand, and a socket that can be made to back up (send waits until `unblock`)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.messages: list[tuple[str, int]] = []  # (type, the loop's turn it was sent in)
        self.turn = 0
        self.ended = False
        self.leave = asyncio.Event()
        self.open = asyncio.Event()
        self.open.set()

    async def receive(self):
        await self.leave.wait()
        return {"type": "http.disconnect"}

    def count_turns(self) -> None:
        self.turn += 1
        if not self.ended:
            asyncio.get_running_loop().call_soon(self.count_turns)

    async def send(self, message):
        await self.open.wait()
        self.messages.append((message["type"], self.turn))
        if message["type"] == "http.response.body":
            self.sent.append(message["body"])
            self.ended = not message["more_body"]


def send_to(client: Client, stream, start=None):
    return stream_send(stream, client.receive, client.send, start=start)


def test_stream_chunks_made_in_one_turn_go_out_in_one_message_and_the_end_with_the_last():
    async def run():
        client = Client()
        later = asyncio.Event()

        async def stream():
            yield b"a"
            yield b"b"  # ready in the same turn as a
            await later.wait()
            yield b"c"

        sending = asyncio.ensure_future(send_to(client, stream()))
        while not client.sent:  # a and b go out without waiting for c
            await asyncio.sleep(0)
        first = list(client.sent)
        later.set()
        await sending
        return first, client

    first, client = async_to_sync(run)()
    assert first == [b"ab"]
    assert client.sent == [b"ab", b"c"]  # the end of the body travels with the last chunk
    assert client.ended


def test_a_stream_stops_being_read_while_the_client_is_backed_up():
    async def run():
        client = Client()
        client.open.clear()  # the client's socket is full: every send waits
        made = 0

        async def stream():
            nonlocal made
            while True:
                made += 1
                yield b"x" * 1024

        sending = asyncio.ensure_future(send_to(client, stream()))
        for _ in range(20):  # turns of the loop: the reader runs until it must wait
            await asyncio.sleep(0)
        ahead = made
        client.leave.set()
        client.open.set()
        await sending
        return ahead

    ahead = async_to_sync(run)()
    assert ahead == STREAM_AHEAD // 1024 + 1  # read up to the limit, then it waits


def test_a_client_that_leaves_mid_stream_has_the_stream_closed_where_it_was_read():
    async def run():
        client = Client()
        closed = asyncio.Event()
        forever = asyncio.Event()

        async def stream():
            try:
                yield b"first"
                await forever.wait()
                yield b"never"
            finally:
                closed.set()

        sending = asyncio.ensure_future(send_to(client, stream()))
        while not client.sent:
            await asyncio.sleep(0)
        client.leave.set()
        await sending
        return client, closed.is_set()

    client, closed = async_to_sync(run)()
    assert client.sent == [b"first"] and not client.ended
    assert closed


def test_a_streams_head_is_sent_in_the_same_turn_as_its_first_chunk():
    async def run():
        client = Client()
        client.count_turns()

        async def stream():
            yield b"first"
            await asyncio.sleep(0)
            yield b"second"

        start = {"type": "http.response.start", "status": 200, "headers": []}
        await send_to(client, stream(), start=start)
        return client

    client = async_to_sync(run)()
    (start, start_turn), (first, first_turn), (last, last_turn) = client.messages
    assert (start, first, last) == ("http.response.start", "http.response.body", "http.response.body")
    assert start_turn == first_turn < last_turn
    assert client.sent == [b"first", b"second"]
