"""A fake LLM provider on 127.0.0.1 speaking OpenAI chat completions (with Azure's deployment
paths), Anthropic messages and Gemini generateContent, streamed (SSE) or not, scriptable per
model id to fail; and embeddings on OpenAI's wire (`/embeddings`, float or base64,
`dimensions`; Azure's deployment path too) and Gemini's (`models/{id}:embedContent` and
`:batchEmbedContents`).

Plain use (benchmarks, scripts):

    server = FakeProviderServer().start()      # its own thread and event loop, a free port
    server.url                                 # http://127.0.0.1:<port>
    server.script("gpt-4o", Reply.rate_limit(retry_after=2), Reply.ok("fine"))
    ...
    server.stop()

In tests, the `fake_provider` fixture (see `fake_provider_fixture` below) gives a handle with
the same methods plus helpers making Provider/ModelConfig rows that point at the server.

Each request for a model takes the next scripted Reply from that model's queue (then the
"*" queue), or the default reply: an echo of the last user message, with usage counted as
one token per word. `server.history` records every request received (path, query,
headers, JSON body, whether the client disconnected early; `Received.images()` lists the
images a request carried, in whichever wire's shape). Connections are kept alive after a
complete answer, streamed or not.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import random
import socket
import struct
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import pytest

ReplyKind = Literal["ok", "error", "hang", "reset", "stream_cut", "stream_error", "raw_stream"]
Wire = Literal["openai", "anthropic", "gemini"]

FAKE_KEY_ENV = "FAKE_PROVIDER_API_KEY"
FAKE_KEY = "sk-fake-test-key"
AZURE_API_VERSION = "2024-10-21"


@dataclass
class Reply:
    """One scripted behaviour. Build them with the class methods."""

    kind: ReplyKind = "ok"
    text: str | None = None  # None: echo the last user message
    status: int = 200
    error_type: str = ""  # OpenAI `type` / Anthropic `error.type`
    error_code: str | None = None  # OpenAI `code`
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    latency_s: float = 0.0  # before the response starts
    ttft_s: float = 0.0  # streams: before the first token
    token_interval_s: float = 0.0  # streams: between tokens
    after_tokens: int = 3  # stream_cut: tokens sent before the connection drops
    hang_s: float = 30.0  # hang: how long to stall (ends early if the client goes away)
    finish_reason: str = "stop"
    input_tokens: int | None = None  # None: counted from the request
    output_tokens: int | None = None  # None: counted from the text
    cached_tokens: int = 0
    pieces: tuple[bytes, ...] = ()  # raw_stream: the body, one HTTP chunk (and network write) each
    echoes_auth: bool = False  # error: the message repeats the credentials the request carried
    # ok: tool calls answered in the wire's own shape (OpenAI tool_calls / Anthropic tool_use /
    # Gemini functionCall, which has no id), streamed as incremental deltas (Gemini: each call
    # whole); each {"id", "name", "arguments": dict or JSON text}.
    tool_calls: tuple[dict[str, Any], ...] = ()
    reasoning_tokens: int = 0  # Gemini: thoughtsTokenCount
    gate: str = ""  # held (after being received) until the test calls server.release(gate)
    # Embeddings: the vector size answered (None: the request's `dimensions`, else 8).
    embedding_dimensions: int | None = None

    @classmethod
    def ok(cls, text: str | None = None, **kwargs: Any) -> Reply:
        return cls(kind="ok", text=text, **kwargs)

    @classmethod
    def tool_call(
        cls, name: str, arguments: dict[str, Any] | str, *, id: str = "call_1", text: str = "", **kwargs: Any
    ) -> Reply:
        return cls.tool_calls_of({"id": id, "name": name, "arguments": arguments}, text=text, **kwargs)

    @classmethod
    def tool_calls_of(cls, *calls: dict[str, Any], text: str = "", **kwargs: Any) -> Reply:
        """Several tool calls in one answer (parallel tool calls), finish_reason tool_calls."""
        return cls(kind="ok", text=text, tool_calls=tuple(calls), finish_reason="tool_calls", **kwargs)

    @classmethod
    def embedding(cls, *, dimensions: int | None = None, **kwargs: Any) -> Reply:
        """An embeddings answer of `dimensions`-sized vectors whatever the request asked."""
        return cls(kind="ok", embedding_dimensions=dimensions, **kwargs)

    @classmethod
    def rate_limit(cls, *, retry_after: float | None = None, retry_after_ms: float | None = None) -> Reply:
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        if retry_after_ms is not None:
            headers["retry-after-ms"] = f"{retry_after_ms:g}"
        return cls(
            kind="error",
            status=429,
            error_type="rate_limit_error",
            error_code="rate_limit_exceeded",
            message="Rate limit reached for requests.",
            headers=headers,
        )

    @classmethod
    def server_error(cls, status: int = 500) -> Reply:
        return cls(kind="error", status=status, error_type="api_error", message="The server had an error.")

    @classmethod
    def overloaded(cls) -> Reply:
        return cls(kind="error", status=529, error_type="overloaded_error", message="Overloaded.")

    @classmethod
    def bad_request(cls, message: str = "Invalid value for 'temperature'.") -> Reply:
        return cls(
            kind="error", status=400, error_type="invalid_request_error", error_code=None, message=message
        )

    @classmethod
    def unauthorized(cls) -> Reply:
        return cls(
            kind="error",
            status=401,
            error_type="authentication_error",
            error_code="invalid_api_key",
            message="Incorrect API key provided.",
        )

    @classmethod
    def forbidden(cls) -> Reply:
        return cls(kind="error", status=403, error_type="permission_error", message="Not allowed.")

    @classmethod
    def model_not_found(cls) -> Reply:
        return cls(
            kind="error",
            status=404,
            error_type="not_found_error",
            error_code="model_not_found",
            message="The model does not exist or you do not have access to it.",
        )

    @classmethod
    def context_length(cls) -> Reply:
        """OpenAI: 400 code context_length_exceeded; Anthropic: 400 "prompt is too long"."""
        return cls(
            kind="error",
            status=400,
            error_type="invalid_request_error",
            error_code="context_length_exceeded",
            message="context_length",  # replaced by the wire format's own wording
        )

    @classmethod
    def content_filter(cls) -> Reply:
        return cls(
            kind="error",
            status=400,
            error_type="invalid_request_error",
            error_code="content_filter",
            message="The response was filtered due to the prompt triggering content management policy.",
        )

    @classmethod
    def echo_auth(cls, status: int = 401) -> Reply:
        """An error whose message repeats the request's Authorization / api-key / x-api-key
        header values, as some upstreams and proxies do (a secret-redaction probe)."""
        return cls(
            kind="error",
            status=status,
            error_type="authentication_error",
            error_code="invalid_api_key",
            message="Rejected credentials:",
            echoes_auth=True,
        )

    @classmethod
    def held(cls, gate: str, reply: Reply | None = None) -> Reply:
        """`reply` (ok by default), sent only once the test calls `server.release(gate)`: a
        call kept in flight for exactly as long as the test needs, without timing."""
        return replace(reply or cls.ok(), gate=gate)

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Reply:
        return cls(kind="hang", hang_s=seconds)

    @classmethod
    def reset(cls) -> Reply:
        """Read the request, then drop the connection with a TCP reset."""
        return cls(kind="reset")

    @classmethod
    def stream_cut(cls, after_tokens: int = 3, text: str | None = None) -> Reply:
        """Streams: send `after_tokens` tokens then drop the connection. Non-streamed
        (embeddings too): drop the connection halfway through the body."""
        return cls(kind="stream_cut", after_tokens=after_tokens, text=text)

    @classmethod
    def stream_error(cls, after_tokens: int = 2, text: str | None = None) -> Reply:
        """Streams: send `after_tokens` tokens, then an error event in the wire's format
        (OpenAI: a data line with "error"; Anthropic: `event: error`, overloaded_error)."""
        return cls(
            kind="stream_error",
            after_tokens=after_tokens,
            text=text,
            error_type="overloaded_error",
            message="Overloaded",
        )

    @classmethod
    def raw_stream(cls, *pieces: bytes | str, interval_s: float = 0.0, hold_open_s: float = 0.0) -> Reply:
        """Streams: this exact body (the SSE text as written, malformed or not), each piece
        written and flushed on its own, `interval_s` apart (so a client reads them
        separately: a line can be split across network reads); then the body ends, or,
        with `hold_open_s`, stays open that long first (ends early if the client goes away)."""
        return cls(
            kind="raw_stream",
            pieces=tuple(p.encode() if isinstance(p, str) else p for p in pieces),
            token_interval_s=interval_s,
            hang_s=hold_open_s,
        )

    @classmethod
    def slow(
        cls, *, latency_s: float = 0.0, ttft_s: float = 0.0, token_interval_s: float = 0.0, **kw: Any
    ) -> Reply:
        return cls(kind="ok", latency_s=latency_s, ttft_s=ttft_s, token_interval_s=token_interval_s, **kw)


@dataclass
class Received:
    """A request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]
    model: str
    wire: Wire
    stream: bool
    reply_kind: str = ""
    embeddings: bool = False  # an embeddings request (OpenAI /embeddings or Gemini's)
    connection: int = 0  # which TCP connection carried it (1, 2, … in accept order)
    disconnected: bool = False  # the client went away before the answer ended
    completed: bool = False  # the whole answer was sent

    def images(self) -> list[dict[str, str]]:
        """The images the request carried, in order: {"source": "base64", "media_type", "data"}
        or {"source": "url", "url"} (Gemini fileData also has "media_type")."""
        return _images(self.wire, self.body)


class FakeProviderServer:
    """The server. `start()` runs it on its own thread and loop; `stop()` ends it."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.history: list[Received] = []
        self.default_reply = Reply.ok()
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._defaults: dict[str, Reply] = {}
        self._mixes: dict[str, tuple[random.Random, list[tuple[float, Reply]]]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._connection_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self._changed = threading.Condition(self._lock)
        self._gates: dict[str, asyncio.Event] = {}
        self._connections: set[asyncio.Task] = set()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeProviderServer:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="fake-provider", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("The fake provider server did not start.")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(self._shutdown)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(
            asyncio.start_server(self._handle_connection, self.host, self.port)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _shutdown(self) -> None:
        assert self._loop is not None and self._server is not None
        self._server.close()
        for task in list(self._connections):
            task.cancel()

        async def finish() -> None:
            await asyncio.gather(*self._connections, return_exceptions=True)
            self._loop.stop()  # type: ignore[union-attr]

        self._loop.create_task(finish())

    # -- scripting and history ----------------------------------------------------------------

    def script(self, model: str, *replies: Reply) -> None:
        """Queue replies for requests naming `model` ("*": any model)."""
        with self._lock:
            self._scripts[model].extend(replies)

    def set_default(self, model: str, reply: Reply) -> None:
        """The reply for `model` whenever its queue is empty (not used up), e.g. a fixed latency:
        `server.set_default("slow-model", Reply.slow(latency_s=0.3))`."""
        with self._lock:
            self._defaults[model] = reply

    def set_mix(self, model: str, choices: list[tuple[float, Reply]], *, seed: int = 0) -> None:
        """Whenever `model`'s queue is empty, answer with each Reply at its probability (drawn
        from a seeded generator, so a run is repeatable); the rest of the time, the default.
        `server.set_mix("m", [(0.1, Reply.rate_limit()), (0.1, Reply.reset())])`."""
        if sum(p for p, _ in choices) > 1.0 + 1e-9:
            raise ValueError("the probabilities add up to more than 1")
        with self._lock:
            self._mixes[model] = (random.Random(seed), list(choices))

    def reset(self) -> None:
        """Forget scripts, per-model defaults and history; back to the default reply."""
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self._mixes.clear()
            self._gates.clear()
            self.history.clear()
            self.default_reply = Reply.ok()

    def _gate(self, name: str) -> asyncio.Event:
        with self._lock:
            return self._gates.setdefault(name, asyncio.Event())

    def release(self, gate: str) -> None:
        """Let every reply held at `gate` (now or later) go."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._gate(gate).set)

    def requests_for(self, model: str) -> list[Received]:
        with self._lock:
            return [r for r in self.history if r.model == model]

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Block until `predicate(history)` holds (e.g. a disconnect was seen) or time runs out."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.history):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def _next_reply(self, model: str) -> Reply:
        with self._lock:
            for key in (model, "*"):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
            mix = self._mixes.get(model) or self._mixes.get("*")
            if mix is not None:
                rng, choices = mix
                draw = rng.random()
                for probability, reply in choices:
                    if draw < probability:
                        return reply
                    draw -= probability
            return self._defaults.get(model, self.default_reply)

    def _record(self, received: Received) -> None:
        with self._changed:
            self.history.append(received)
            self._changed.notify_all()

    def _touch(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- HTTP/1.1 ----------------------------------------------------------------------------

    async def _handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        connection = next(self._connection_ids)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                keep_open = await self._respond(request, reader, writer, connection)
                if not keep_open:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(
        self,
        request: tuple[str, str, dict[str, str], bytes],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: int,
    ) -> bool:
        method, target, headers, raw_body = request
        parts = urlsplit(target)
        path = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            body = json.loads(raw_body) if raw_body else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        wire: Wire
        embeddings = False
        if method == "POST" and path.endswith("/embeddings"):
            wire, embeddings = "openai", True
            model = str(body.get("model", ""))
            if "/openai/deployments/" in path:
                model = path.split("/openai/deployments/", 1)[1].split("/", 1)[0]
        elif method == "POST" and path.endswith((":batchEmbedContents", ":embedContent")):
            wire, embeddings = "gemini", True
            model = path.rsplit("/models/", 1)[-1].split(":", 1)[0]
        elif (
            method == "POST"
            and "/models/" in path
            and path.endswith((":generateContent", ":streamGenerateContent"))
        ):
            wire = "gemini"
            model = path.rsplit("/models/", 1)[1].rsplit(":", 1)[0]
        elif method == "POST" and path.endswith("/messages"):
            wire = "anthropic"
            model = str(body.get("model", ""))
        elif method == "POST" and path.endswith("/chat/completions"):
            wire = "openai"
            model = str(body.get("model", ""))
            if "/openai/deployments/" in path:
                model = path.split("/openai/deployments/", 1)[1].split("/", 1)[0]
        else:
            await _send_json(writer, 404, {"error": {"message": f"No route for {method} {path}"}})
            return True
        received = Received(
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            model=model,
            wire=wire,
            stream=bool(body.get("stream")) or path.endswith(":streamGenerateContent"),
            connection=connection,
            embeddings=embeddings,
        )
        reply = self._next_reply(model)
        received.reply_kind = reply.kind
        self._record(received)

        # Notice a client that goes away while we stall or stream.
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_eof(reader, gone))
        try:
            if reply.latency_s and await _wait_or_gone(gone, reply.latency_s):
                return self._disconnected(received)
            if reply.gate:
                await self._gate(reply.gate).wait()
            if reply.kind == "hang":
                await _wait_or_gone(gone, reply.hang_s)
                return self._disconnected(received)
            if reply.kind == "reset":
                _reset(writer)
                return False
            if not received.stream or reply.kind == "error":
                # Stop watching before answering: the client may send its next request at once.
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if reply.kind == "error":
                if reply.echoes_auth:
                    sent = [
                        headers[h]
                        for h in ("authorization", "api-key", "x-api-key", "x-goog-api-key")
                        if h in headers
                    ]
                    reply = replace(reply, message=f"{reply.message} {' '.join(sent) or '(none)'}")
                if wire == "gemini" and reply.error_code == "content_filter":
                    # Gemini blocks a prompt with a 200 answer that has no candidates.
                    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {}}
                    await _send_json(writer, 200, blocked, reply.headers)
                else:
                    await _send_json(writer, reply.status, _error_body(wire, reply), reply.headers)
                received.completed = True
                self._touch()
                return True
            if embeddings:
                payload = _embeddings_answer(path, wire, model, body, reply)
                if reply.kind == "stream_cut":
                    await _send_cut(writer, payload)
                    return False
                await _send_json(writer, 200, payload)
                received.completed = True
                self._touch()
                return True
            text = reply.text if reply.text is not None else _echo(body, wire)
            usage = _usage(body, text, reply)
            if received.stream:
                finished = await self._stream(writer, wire, model, text, usage, reply, gone)
                if not finished:
                    return self._disconnected(received) if gone.is_set() else False
                received.completed = True
                self._touch()
                # Keep-alive, as real providers: the connection serves the client's next
                # request. (The EOF watcher is cancelled in `finally` with no await since the
                # body's last chunk, so it cannot swallow that request.)
                return True
            if wire == "openai":
                payload = _openai_completion(model, text, usage, reply, body)
            elif wire == "gemini":
                payload = _gemini_response(next(self._ids), model, text, usage, reply, body)
            else:
                payload = _anthropic_message(model, text, usage, reply)
            if reply.kind == "stream_cut":
                await _send_cut(writer, payload)
                return False
            await _send_json(writer, 200, payload)
            received.completed = True
            self._touch()
            return True
        except (ConnectionError, OSError):
            return self._disconnected(received)
        finally:
            watcher.cancel()

    def _disconnected(self, received: Received) -> bool:
        received.disconnected = True
        self._touch()
        return False

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        wire: Wire,
        model: str,
        text: str,
        usage: dict[str, int],
        reply: Reply,
        gone: asyncio.Event,
    ) -> bool:
        writer.write(
            _head(
                200,
                {
                    "content-type": "text/event-stream",
                    "transfer-encoding": "chunked",
                    "cache-control": "no-cache",
                },
            )
        )
        await writer.drain()
        if reply.ttft_s and await _wait_or_gone(gone, reply.ttft_s):
            return False
        if reply.kind == "raw_stream":
            for index, piece in enumerate(reply.pieces):
                if index and reply.token_interval_s and await _wait_or_gone(gone, reply.token_interval_s):
                    return False
                writer.write(_chunk(piece))
                await writer.drain()
            if reply.hang_s and await _wait_or_gone(gone, reply.hang_s):
                return False
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        tokens = _tokens(text)
        ident = next(self._ids)
        if wire == "openai":
            events = _openai_stream_events(ident, model, tokens, usage, reply)
        elif wire == "gemini":
            events = _gemini_stream_events(ident, model, tokens, usage, reply)
        else:
            events = _anthropic_stream_events(ident, model, tokens, usage, reply)
        sent_tokens = 0
        for event, is_token in events:
            if is_token:
                if reply.kind == "stream_cut" and sent_tokens >= reply.after_tokens:
                    _reset(writer)
                    return False
                if reply.kind == "stream_error" and sent_tokens >= reply.after_tokens:
                    if wire == "anthropic":
                        error = {
                            "type": "error",
                            "error": {"type": reply.error_type, "message": reply.message},
                        }
                        writer.write(_chunk(_sse(error, "error")))
                    elif wire == "gemini":
                        error = {"error": {"code": 503, "message": reply.message, "status": "UNAVAILABLE"}}
                        writer.write(_chunk(_sse(error)))
                    else:
                        writer.write(
                            _chunk(_sse({"error": {"message": reply.message, "type": "server_error"}}))
                        )
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
                    return True
                if (
                    sent_tokens
                    and reply.token_interval_s
                    and await _wait_or_gone(gone, reply.token_interval_s)
                ):
                    return False
                sent_tokens += 1
            if gone.is_set():
                return False
            writer.write(_chunk(event))
            await writer.drain()
        if reply.kind == "stream_cut":
            _reset(writer)
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


# -- HTTP helpers ------------------------------------------------------------------------------


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                break
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        body = b"".join(chunks)
    elif headers.get("content-length"):
        body = await reader.readexactly(int(headers["content-length"]))
    return method, target, headers, body


async def _watch_eof(reader: asyncio.StreamReader, gone: asyncio.Event) -> None:
    with contextlib.suppress(Exception):
        while await reader.read(65536):
            pass
    gone.set()


async def _wait_or_gone(gone: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`; True if the client went away meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gone.wait(), seconds)
    return gone.is_set()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send_json(
    writer: asyncio.StreamWriter, status: int, payload: Any, extra_headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(payload).encode()
    headers = {"content-type": "application/json", "content-length": str(len(data))}
    headers.update(extra_headers or {})
    writer.write(_head(status, headers) + data)
    await writer.drain()


async def _send_cut(writer: asyncio.StreamWriter, payload: Any) -> None:
    """A 200 answer whose body stops halfway (its Content-Length promises it all): a reset."""
    data = json.dumps(payload).encode()
    writer.write(_head(200, {"content-type": "application/json", "content-length": str(len(data))}))
    writer.write(data[: len(data) // 2])
    await writer.drain()
    _reset(writer)


def _chunk(event: bytes) -> bytes:
    return f"{len(event):x}\r\n".encode() + event + b"\r\n"


def _sse(data: Any, event: str | None = None) -> bytes:
    prefix = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{prefix}data: {payload}\n\n".encode()


# -- Wire formats ------------------------------------------------------------------------------


def _gemini_part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return ""
    if isinstance(part.get("text"), str):
        return part["text"]
    response = part.get("functionResponse")
    if isinstance(response, dict):  # tool results count as their JSON text
        return json.dumps(response.get("response"))
    return ""


def _messages_text(body: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    if "contents" in body:  # Gemini
        instruction = body.get("systemInstruction")
        if isinstance(instruction, dict):
            out.append(("system", " ".join(_gemini_part_text(p) for p in instruction.get("parts") or [])))
        for content in body.get("contents") or []:
            if isinstance(content, dict):
                text = " ".join(t for t in map(_gemini_part_text, content.get("parts") or []) if t)
                out.append((str(content.get("role", "")), text))
        return out
    system = body.get("system")
    if isinstance(system, str):
        out.append(("system", system))
    elif isinstance(system, list):
        out.append(("system", " ".join(str(b.get("text", "")) for b in system if isinstance(b, dict))))
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):  # text blocks; tool results count as their text
            content = " ".join(
                str(b.get("text", "") or (b.get("content") if isinstance(b.get("content"), str) else ""))
                for b in content
                if isinstance(b, dict)
            )
        out.append((str(message.get("role", "")), str(content or "")))
    return out


def _echo(body: dict[str, Any], wire: Wire) -> str:
    users = [text for role, text in _messages_text(body) if role == "user"]
    last = users[-1] if users else ""
    return f"Echo: {last}".strip()


def _usage(body: dict[str, Any], text: str, reply: Reply) -> dict[str, int]:
    input_tokens = reply.input_tokens
    if input_tokens is None:
        input_tokens = sum(len(t.split()) for _, t in _messages_text(body))
    output_tokens = reply.output_tokens if reply.output_tokens is not None else len(_tokens(text))
    return {"input": input_tokens, "output": output_tokens, "cached": reply.cached_tokens}


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words) if w or i == 0]


_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _error_body(wire: Wire, reply: Reply) -> dict[str, Any]:
    message = reply.message
    if wire == "gemini":
        if message == "context_length":
            message = "The input token count (250000) exceeds the maximum number of tokens allowed (128000)."
        if reply.status == 404:
            message = "models/x is not found for API version v1beta, or is not supported for generateContent."
        status = _GEMINI_STATUS.get(reply.status, "UNKNOWN" if reply.status < 500 else "INTERNAL")
        error: dict[str, Any] = {"code": reply.status, "message": message, "status": status}
        if reply.error_code == "invalid_api_key":
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ]
        return {"error": error}
    if wire == "anthropic":
        error_type = reply.error_type
        if message == "context_length":
            message = "prompt is too long: 250000 tokens > 200000 maximum"
        if reply.status == 404:
            message = "model: not found"
        if reply.error_code == "content_filter":
            message = "Output blocked by content filtering policy"
        return {"type": "error", "error": {"type": error_type, "message": message}}
    if message == "context_length":
        message = (
            "This model's maximum context length is 128000 tokens. However, your messages resulted "
            "in 250000 tokens. Please reduce the length of the messages."
        )
    error_type = "invalid_request_error" if reply.status < 500 and reply.status != 429 else reply.error_type
    if reply.status == 429:
        error_type = "requests"
    return {"error": {"message": message, "type": error_type, "param": None, "code": reply.error_code}}


def fake_vector(model: str, item: Any, dimensions: int) -> list[float]:
    """The fake's embedding of one input: a normalised vector seeded by model and input."""
    rng = random.Random(f"{model}:{json.dumps(item)}")
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [v / norm for v in values]


def _embedding_inputs(wire: Wire, path: str, body: dict[str, Any]) -> list[Any]:
    if wire == "gemini":
        requests = body.get("requests") if path.endswith(":batchEmbedContents") else [body]
        return [
            " ".join(str(p.get("text", "")) for p in (r.get("content") or {}).get("parts") or [])
            for r in requests or []
            if isinstance(r, dict)
        ]
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)):
        return [raw]
    return list(raw) if isinstance(raw, list) else []


def _embeddings_answer(
    path: str, wire: Wire, model: str, body: dict[str, Any], reply: Reply
) -> dict[str, Any]:
    inputs = _embedding_inputs(wire, path, body)
    if wire == "gemini":
        first = (body.get("requests") or [body])[0] if inputs else {}
        asked = first.get("outputDimensionality") if isinstance(first, dict) else None
    else:
        asked = body.get("dimensions")
    dimensions = reply.embedding_dimensions or (asked if isinstance(asked, int) else None) or 8
    vectors = [fake_vector(model, item, dimensions) for item in inputs]
    if wire == "gemini":
        if path.endswith(":embedContent"):
            return {"embedding": {"values": vectors[0] if vectors else []}}
        return {"embeddings": [{"values": v} for v in vectors]}
    tokens = reply.input_tokens
    if tokens is None:
        tokens = sum(len(item) if isinstance(item, list) else len(str(item).split()) for item in inputs)
    base64_wanted = body.get("encoding_format") == "base64"
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() if base64_wanted else v,
        }
        for i, v in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _openai_usage(usage: dict[str, int]) -> dict[str, Any]:
    return {
        "prompt_tokens": usage["input"],
        "completion_tokens": usage["output"],
        "total_tokens": usage["input"] + usage["output"],
        "prompt_tokens_details": {"cached_tokens": usage["cached"]},
    }


def _arguments_text(call: dict[str, Any]) -> str:
    arguments = call.get("arguments", {})
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _openai_tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": _arguments_text(c)}}
        for c in reply.tool_calls
    ]


def _openai_logprobs(text: str, top: int) -> dict[str, Any]:
    content = []
    for i, token in enumerate(_tokens(text)):
        logprob = -0.01 * (i % 7 + 1)
        alternatives = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
        alternatives += [
            {"token": f"{token}{k}", "logprob": logprob - k, "bytes": None} for k in range(1, top)
        ]
        content.append({**alternatives[0], "top_logprobs": alternatives[:top]})
    return {"content": content, "refusal": None}


def _openai_completion(
    model: str, text: str, usage: dict[str, int], reply: Reply, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = body or {}
    asked = body.get("n")
    n = asked if isinstance(asked, int) and asked > 1 else 1
    choices = []
    for index in range(n):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text if text or not reply.tool_calls else None,
        }
        if reply.tool_calls:
            message["tool_calls"] = _openai_tool_calls(reply)
        choice: dict[str, Any] = {"index": index, "message": message, "finish_reason": reply.finish_reason}
        if body.get("logprobs"):
            choice["logprobs"] = _openai_logprobs(text, int(body.get("top_logprobs") or 1))
        choices.append(choice)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _openai_usage({**usage, "output": usage["output"] * n}),
    }


def _fragments(text: str, pieces: int = 3) -> list[str]:
    """JSON text cut in a few pieces, as providers stream tool arguments."""
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _openai_stream_events(ident: int, model: str, tokens: list[str], usage: dict[str, int], reply: Reply):
    base = {
        "id": f"chatcmpl-fake-{ident}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    yield chunk({"role": "assistant", "content": ""}), False
    for token in tokens:
        yield chunk({"content": token}), True
    for index, call in enumerate(reply.tool_calls):
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        yield chunk({"tool_calls": [head]}), False
        for fragment in _fragments(_arguments_text(call)):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}), True
    yield chunk({}, reply.finish_reason), False
    yield _sse({**base, "choices": [], "usage": _openai_usage(usage)}), False
    yield _sse("[DONE]"), False


_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "content_filter": "refusal",
    "tool_calls": "tool_use",
}


def _call_input(call: dict[str, Any]) -> Any:
    """A call's arguments as an object; arguments that are not JSON are sent as their text
    (a malformed call, as a misbehaving upstream might send one)."""
    text = _arguments_text(call)
    try:
        return json.loads(text or "{}")
    except ValueError:
        return text


def _anthropic_tool_uses(reply: Reply) -> list[dict[str, Any]]:
    return [
        {"type": "tool_use", "id": c["id"], "name": c["name"], "input": _call_input(c)}
        for c in reply.tool_calls
    ]


def _anthropic_usage(usage: dict[str, int]) -> dict[str, int]:
    return {
        "input_tokens": usage["input"] - usage["cached"],
        "output_tokens": usage["output"],
        "cache_read_input_tokens": usage["cached"],
        "cache_creation_input_tokens": 0,
    }


def _anthropic_message(model: str, text: str, usage: dict[str, int], reply: Reply) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": ([{"type": "text", "text": text}] if text or not reply.tool_calls else [])
        + _anthropic_tool_uses(reply),
        "stop_reason": _ANTHROPIC_STOP.get(reply.finish_reason, reply.finish_reason),
        "stop_sequence": None,
        "usage": _anthropic_usage(usage),
    }


def _anthropic_stream_events(ident: int, model: str, tokens: list[str], usage: dict[str, int], reply: Reply):
    start_usage = {**_anthropic_usage(usage), "output_tokens": 1}
    message: dict[str, Any] = {
        "id": f"msg_fake_{ident}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    yield _sse({"type": "message_start", "message": message}, "message_start"), False
    yield (
        _sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
        False,
    )
    yield _sse({"type": "ping"}, "ping"), False
    for token in tokens:
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}}
        yield _sse(delta, "content_block_delta"), True
    yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"), False
    for offset, call in enumerate(reply.tool_calls, start=1):
        block = {"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}}
        yield (
            _sse(
                {"type": "content_block_start", "index": offset, "content_block": block},
                "content_block_start",
            ),
            False,
        )
        for fragment in _fragments(_arguments_text(call)):
            delta = {"type": "input_json_delta", "partial_json": fragment}
            yield (
                _sse({"type": "content_block_delta", "index": offset, "delta": delta}, "content_block_delta"),
                True,
            )
        yield _sse({"type": "content_block_stop", "index": offset}, "content_block_stop"), False
    stop = _ANTHROPIC_STOP.get(reply.finish_reason, reply.finish_reason)
    yield (
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": usage["output"]},
            },
            "message_delta",
        ),
        False,
    )
    yield _sse({"type": "message_stop"}, "message_stop"), False


_GEMINI_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}


def _gemini_usage(usage: dict[str, int], reply: Reply, *, candidates: int = 1) -> dict[str, int]:
    out = {
        "promptTokenCount": usage["input"],
        "candidatesTokenCount": usage["output"] * candidates,
        "totalTokenCount": usage["input"] + usage["output"] * candidates + reply.reasoning_tokens,
    }
    if usage["cached"]:
        out["cachedContentTokenCount"] = usage["cached"]
    if reply.reasoning_tokens:
        out["thoughtsTokenCount"] = reply.reasoning_tokens
    return out


def _gemini_calls(reply: Reply) -> list[dict[str, Any]]:
    return [{"functionCall": {"name": c["name"], "args": _call_input(c)}} for c in reply.tool_calls]


def _gemini_logprobs(text: str, top: int) -> dict[str, Any]:
    chosen, tops = [], []
    for i, token in enumerate(_tokens(text)):
        logprob = -0.01 * (i % 7 + 1)
        chosen.append({"token": token, "tokenId": i, "logProbability": logprob})
        alternatives = [{"token": token, "tokenId": i, "logProbability": logprob}]
        alternatives += [
            {"token": f"{token}{k}", "tokenId": 1000 + k, "logProbability": logprob - k}
            for k in range(1, top)
        ]
        tops.append({"candidates": alternatives[:top]})
    return {"topCandidates": tops, "chosenCandidates": chosen}


def _gemini_response(
    ident: int, model: str, text: str, usage: dict[str, int], reply: Reply, body: dict[str, Any]
) -> dict[str, Any]:
    found = body.get("generationConfig")
    config: dict[str, Any] = found if isinstance(found, dict) else {}
    asked = config.get("candidateCount")
    n = asked if isinstance(asked, int) and asked > 1 else 1
    parts: list[dict[str, Any]] = ([{"text": text}] if text or not reply.tool_calls else []) + _gemini_calls(
        reply
    )
    candidates = []
    for index in range(n):
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": parts},
            "finishReason": _GEMINI_FINISH.get(reply.finish_reason, reply.finish_reason),
            "index": index,
        }
        if config.get("responseLogprobs"):
            candidate["logprobsResult"] = _gemini_logprobs(text, int(config.get("logprobs") or 1))
        candidates.append(candidate)
    return {
        "candidates": candidates,
        "usageMetadata": _gemini_usage(usage, reply, candidates=n),
        "modelVersion": model,
        "responseId": f"fake-response-{ident}",
    }


def _gemini_stream_events(ident: int, model: str, tokens: list[str], usage: dict[str, int], reply: Reply):
    """Text pieces, then the function calls (each whole, as Gemini streams them), then the
    finish reason with the usage; no end marker: the body ends."""
    base = {"modelVersion": model, "responseId": f"fake-response-{ident}"}

    def event(parts: list[dict[str, Any]], **extra: Any) -> bytes:
        return _sse(
            {"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0, **extra}], **base}
        )

    for token in tokens if (tokens != [""] or not reply.tool_calls) else []:
        yield event([{"text": token}]), True
    for call in _gemini_calls(reply):
        yield event([call]), True
    finish = _GEMINI_FINISH.get(reply.finish_reason, reply.finish_reason)
    last = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": finish, "index": 0}
        ],
        "usageMetadata": _gemini_usage(usage, reply),
        **base,
    }
    yield _sse(last), False


def _images(wire: Wire, body: dict[str, Any]) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for message in body.get("contents" if wire == "gemini" else "messages") or []:
        if not isinstance(message, dict):
            continue
        parts = message.get("parts") if wire == "gemini" else message.get("content")
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict):
                continue
            if wire == "openai" and part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url", ""))
                if url.startswith("data:") and ";base64," in url:
                    media_type, _, data = url[5:].partition(";base64,")
                    found.append({"source": "base64", "media_type": media_type, "data": data})
                else:
                    found.append({"source": "url", "url": url})
            elif wire == "anthropic" and part.get("type") == "image":
                source = part.get("source") or {}
                if source.get("type") == "base64":
                    found.append(
                        {
                            "source": "base64",
                            "media_type": source.get("media_type", ""),
                            "data": source.get("data", ""),
                        }
                    )
                else:
                    found.append({"source": "url", "url": source.get("url", "")})
            elif wire == "gemini" and "inlineData" in part:
                inline = part["inlineData"]
                found.append(
                    {
                        "source": "base64",
                        "media_type": inline.get("mimeType", ""),
                        "data": inline.get("data", ""),
                    }
                )
            elif wire == "gemini" and "fileData" in part:
                file = part["fileData"]
                found.append(
                    {"source": "url", "url": file.get("fileUri", ""), "media_type": file.get("mimeType", "")}
                )
    return found


# -- pytest fixture ----------------------------------------------------------------------------


class FakeProvider:
    """What the `fake_provider` fixture gives a test: the server's scripting and history,
    plus Provider/ModelConfig rows (and ProviderSpecs) pointing at it."""

    def __init__(self, server: FakeProviderServer) -> None:
        self.server = server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def history(self) -> list[Received]:
        return self.server.history

    def script(self, model: str, *replies: Reply) -> None:
        self.server.script(model, *replies)

    def release(self, gate: str) -> None:
        self.server.release(gate)

    def requests_for(self, model: str) -> list[Received]:
        return self.server.requests_for(model)

    def set_default(self, model: str, reply: Reply) -> None:
        self.server.set_default(model, reply)

    def set_mix(self, model: str, choices: list[tuple[float, Reply]], *, seed: int = 0) -> None:
        self.server.set_mix(model, choices, seed=seed)

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> bool:
        return self.server.wait_for(predicate, timeout)

    def base_url(self, kind: str) -> str:
        """What a Provider of `kind` needs in `base_url` to reach this server."""
        if kind in ("azure_openai", "anthropic", "gemini"):
            return self.url  # the clients add /openai/deployments/…, /v1/messages, /v1beta/models/…
        return f"{self.url}/v1"

    def provider_fields(self, kind: str = "openai", **overrides: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "kind": kind,
            "base_url": self.base_url(kind),
            "api_key_env": FAKE_KEY_ENV,
            "api_version": AZURE_API_VERSION if kind == "azure_openai" else "",
            "options": {},
        }
        fields.update(overrides)
        return fields

    def spec(self, kind: str = "openai", *, name: str | None = None, **overrides: Any) -> Any:
        """A ProviderSpec (no database) pointing at this server."""
        from routing.providers.base import ProviderSpec

        fields = self.provider_fields(kind, **overrides)
        fields.pop("enabled", None)
        return ProviderSpec(name=name or f"fake-{kind}", **fields)

    def provider(self, kind: str = "openai", *, name: str | None = None, **overrides: Any) -> Any:
        """A saved routing.Provider pointing at this server (needs the `db` fixture)."""
        from tests.factories import ProviderFactory

        return ProviderFactory(name=name or f"fake-{kind}", **self.provider_fields(kind, **overrides))

    def model(
        self,
        name: str,
        *,
        kind: str = "openai",
        model_id: str | None = None,
        provider: Any = None,
        capabilities: list[str] | None = None,
        **fields: Any,
    ) -> Any:
        """A saved routing.ModelConfig on a provider of `kind` pointing at this server.

        Script its failures with `fake_provider.script(model.model_id, Reply.rate_limit())`
        (`model_id` defaults to `name`)."""
        from tests.factories import ModelConfigFactory

        if provider is None:
            provider = self.provider(kind)
        return ModelConfigFactory(
            name=name,
            provider=provider,
            model_id=model_id or name,
            capabilities=capabilities or [],
            **fields,
        )


_server: FakeProviderServer | None = None


def fake_provider_server() -> FakeProviderServer:
    """The process-wide server the fixture uses (started on first use, stopped at exit)."""
    global _server
    if _server is None:
        import atexit

        _server = FakeProviderServer().start()
        atexit.register(_server.stop)
    return _server


@pytest.fixture(name="fake_provider")
def fake_provider_fixture(monkeypatch: pytest.MonkeyPatch):
    """A FakeProvider handle on a shared server, with scripts and history reset per test and
    FAKE_PROVIDER_API_KEY set. Cached SDK clients are dropped at the end of the test."""
    from routing.providers.registry import forget_clients

    server = fake_provider_server()
    server.reset()
    monkeypatch.setenv(FAKE_KEY_ENV, FAKE_KEY)
    yield FakeProvider(server)
    server.reset()
    forget_clients()
