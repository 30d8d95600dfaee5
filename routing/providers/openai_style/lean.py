"""The lean HTTP path: the request an SDK client would send for a (path, model), built once,
posted on pooled keep-alive connections kept per client (`routing.providers.http1`).

It serves any Stainless SDK client (`openai` and `anthropic` both are): OpenAI-style chat
completions and embeddings (`openai_style.client`), and Anthropic's messages, plain and
streamed (`routing.providers.anthropic.client`). Each caller passes its SDK's
`FinalRequestOptions` class and the path; everything else is read from the SDK client.

The SDK's `post` costs ~0.5 ms of CPU per call here (its request options, header merge, URL
and httpx2's request and client layers over the aiohttp transport); a plain
`aiohttp.ClientSession.post` of the same bytes ~0.24 ms, and the same bytes written on a
pooled connection and parsed by httptools (`http1.Http1Client`) ~0.05 ms. So, per client (one
per provider and event loop, `routing.providers.registry`):

- the absolute URL and the static headers come from the SDK client itself, once per path and
  model (`lean_target`): its own `_prepare_options` and `_build_request` make a request for
  that model, and we keep its URL (Azure: the deployment path and `api-version` query) and its
  headers (auth — `Authorization: Bearer` or Azure's `api-key` —, Anthropic's
  `anthropic-version`, content type, user agent, the provider's `default_headers`, an
  organisation or project from the environment), less the SDK's `x-stainless-*` telemetry
  and what the HTTP client sets itself (host, length, encoding, keep-alive). What goes on the
  wire is otherwise the SDK's own request.
- the body is the same JSON as the SDK's encoding of the same params (compact UTF-8, through
  orjson where that gives the same, `lean_body_encode`), so a lone surrogate or a NaN fails the
  same way.
- the request line and the static headers are encoded once per target (`http1.Target`);
- the socket timeouts are the request's (connect, read), as the SDK passes them; the
  transport chokepoint's `asyncio.timeout` still bounds the whole call.
- a status of 400 or above raises the SDK's own `APIStatusError` subclass, built by the SDK
  client from the response (`_make_status_error_from_response`): the chokepoint maps it
  exactly as before (classes, messages, Retry-After); an error event inside a stream is the
  SDK's own exception too (`LeanStream.event_error`). Connection errors (refused, reset,
  a body cut short, a socket timeout) are aiohttp's exception classes with aiohttp's
  messages, raw: the chokepoint reads them as it reads the aiohttp errors under the SDK's
  exceptions.
- cancellation or an early close closes the upstream response (its connection is dropped,
  not reused); a response read to its end goes back to the pool.

`lean_http_for` says whether a client can take this path: the `PROVIDER_LEAN_HTTP` setting
(default on), the aiohttp HTTP layer (`PROVIDER_HTTP`), no proxy from the environment for the
provider's host, no per-request auth in the SDK client (`custom_auth`). When the SDK client's
shape is not what we expect (a newer SDK), the first request finds out and the client goes
back to the SDK path for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson
from django.conf import settings
from openai._models import FinalRequestOptions

from routing.providers.http1 import Http1Client, Response, Target
from routing.providers.openai_style.setup import http_client_kind, shared_ssl_context
from routing.providers.options import NetworkOptions

try:
    import aiohttp
except ImportError:  # pragma: no cover - the openai[aiohttp] extra is a dependency
    aiohttp = None  # type: ignore[assignment]

__all__ = ["LeanHTTP", "LeanTarget", "lean_body_encode", "lean_http_enabled", "lean_http_for"]

logger = logging.getLogger(__name__)

# The SDK's connection pool defaults (openai._constants: 1000 connections, 5 s keep-alive).
DEFAULT_MAX_CONNECTIONS = 1000
KEEPALIVE_S = 5.0
# After `data: [DONE]`, the rest of the body is read for at most this long so the connection
# can be reused (as wire.DRAIN_S for the SDK path).
DRAIN_S = 0.1
# Headers the HTTP client sets itself, and the SDK's telemetry.
_DROPPED = frozenset({"host", "content-length", "connection", "accept-encoding", "transfer-encoding"})
# Response headers that no longer describe the body we hand on (it was decompressed).
_BODY_HEADERS = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


def lean_http_enabled() -> bool:
    """`settings.ORCHESTRATOR["PROVIDER_LEAN_HTTP"]` (default True) and the aiohttp layer."""
    wanted = True
    with contextlib.suppress(Exception):  # settings not configured (a plain script): the default
        wanted = bool(getattr(settings, "ORCHESTRATOR", {}).get("PROVIDER_LEAN_HTTP", True))
    return wanted and aiohttp is not None and http_client_kind() == "aiohttp"


def lean_http_for(
    sdk_client: Any, options: NetworkOptions | None, *, request_options: type[Any] = FinalRequestOptions
) -> LeanHTTP | None:
    """A lean path for `sdk_client`'s requests, or None when it must keep the SDK's.

    `request_options` is the SDK's own `FinalRequestOptions` (openai's by default;
    `anthropic._models.FinalRequestOptions` for an Anthropic client)."""
    if not lean_http_enabled():
        return None
    host = urlsplit(str(getattr(sdk_client, "base_url", ""))).hostname or ""
    if _proxied(host):
        return None  # httpx2 would send it through the environment's proxy: the SDK path does
    if getattr(sdk_client, "custom_auth", None) is not None:
        return None  # auth made per request (a token provider): not something to read once
    return LeanHTTP(
        sdk_client,
        request_options=request_options,
        max_connections=(options.max_connections if options else None),
    )


def _proxied(host: str) -> bool:
    proxies = urllib.request.getproxies_environment()
    if not proxies or not any(proxies.get(scheme) for scheme in ("http", "https", "all")):
        return False
    return not urllib.request.proxy_bypass(host)


def lean_body_encode(params: dict[str, Any]) -> bytes:
    """The JSON body as the SDK encodes it (`openai._utils._json.openapi_dumps`: compact, UTF-8,
    no NaN), through orjson (~15 µs less per request) when that gives the same JSON: orjson
    writes a NaN or an infinity as `null`, so a body with a `null` in it is encoded by json
    (as one orjson refuses: a lone surrogate, an integer beyond 64 bits, a key that is not a
    string), which then refuses what the SDK refuses.

    Its name is among the chokepoint's request builders: what it refuses is request-invalid
    and local, as when the SDK refuses it."""
    try:
        body = orjson.dumps(params)
    except TypeError:  # orjson.JSONEncodeError
        body = b"null"
    if b"null" in body:
        body = json.dumps(params, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    return body


@dataclass(frozen=True)
class LeanTarget:
    """Where one model's requests to one path go, and the headers that go with every request."""

    url: str
    headers: dict[str, str]
    idempotency_header: str | None  # the SDK's idempotency header, if it sends one

    @functools.cached_property
    def wire(self) -> Target:
        """The request line and static headers, encoded once."""
        return Target(self.url, self.headers)

    @functools.cached_property
    def request(self) -> httpx2.Request:
        """An httpx2 request standing for ours, for the SDK's exceptions (built on error only)."""
        return httpx2.Request("POST", self.url, headers=self.headers)


class LeanStream:
    """An open streamed response: its body's reads, and `request` and `event_error` for the
    SDK's exceptions."""

    __slots__ = ("_done", "_response", "_sdk", "_target")

    def __init__(self, response: Response, target: LeanTarget, sdk_client: Any) -> None:
        self._response = response
        self._target = target
        self._sdk = sdk_client
        self._done = False

    @property
    def request(self) -> httpx2.Request:
        return self._target.request

    @property
    def status(self) -> int:
        return self._response.status

    def event_error(self, message: str, body: object) -> Exception:
        """The SDK's exception for an error event inside this stream, as its own stream makes
        it (`_make_status_error` with the stream's response: a status below 400)."""
        response = _sdk_response(self._response, b"", self._target)
        error: Exception = self._sdk._make_status_error(message, body=body, response=response)
        return error

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.chunks()

    async def drain(self) -> None:
        """Read the rest of the body (the chunked terminator) so the connection is reused."""
        if self._response.complete:  # it came with the last event: nothing to wait for
            self._done = True
            return
        with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
            async with asyncio.timeout(DRAIN_S):
                await self._response.read()
                self._done = True

    def close(self) -> None:
        """Back to the pool when read to its end; else the connection is dropped."""
        if self._done:
            self._response.release()
        else:
            self._response.close()


class LeanHTTP:
    """One client's session, its per-(path, model) targets, and the two ways to post."""

    def __init__(
        self,
        sdk_client: Any,
        *,
        request_options: type[Any] = FinalRequestOptions,
        max_connections: int | None = None,
    ) -> None:
        self._sdk = sdk_client
        self._request_options = request_options
        self._max_connections = max_connections or DEFAULT_MAX_CONNECTIONS
        self.session: Http1Client | None = None  # made on first use (on the client's loop)
        self._targets: dict[tuple[str, str], LeanTarget] = {}
        self.broken = False  # the SDK's shape is not what we read: use the SDK path

    def _session_get(self) -> Http1Client:
        session = self.session
        if session is None or session.closed:
            session = self.session = Http1Client(
                ssl_context=shared_ssl_context(),
                max_connections=self._max_connections,
                keepalive_s=KEEPALIVE_S,
            )
        return session

    async def target(self, path: str, model_id: str) -> LeanTarget | None:
        """The URL and headers for `model_id`'s requests to `path` (made on first use); None
        when the SDK's shape is not what we read (then `broken` is set and the caller uses
        the SDK path)."""
        key = (path, model_id)
        target = self._targets.get(key)
        if target is not None:
            return target
        if self.broken:
            return None
        try:
            target = await lean_target(self._sdk, path, model_id, request_options=self._request_options)
        except Exception:
            logger.warning(
                "The %s SDK's request could not be read for the lean HTTP path; "
                "this client keeps the SDK's own path",
                type(self._sdk).__module__.split(".")[0],
                exc_info=True,
            )
            self.broken = True
            return None
        if len(self._targets) < 256:
            self._targets[key] = target
        return target

    async def _post(
        self, target: LeanTarget, body: bytes, timeout_s: float, idempotency_key: str
    ) -> Response:
        extra = b""
        if target.idempotency_header is not None:
            extra = f"{target.idempotency_header}: {idempotency_key}\r\n".encode("latin-1")
        response = await self._session_get().post(
            target.wire, body, headers=extra, connect_timeout=timeout_s, read_timeout=timeout_s
        )
        if response.status >= 400:
            try:
                content = await response.read()
            finally:
                response.release()
            raise self._status_error(response, content, target)
        return response

    async def complete(
        self, target: LeanTarget, body: bytes, timeout_s: float, idempotency_key: str
    ) -> bytes:
        """POST the body; the answer's bytes (a status error raised as the SDK raises it)."""
        response = await self._post(target, body, timeout_s, idempotency_key)
        try:
            content: bytes = await response.read()
        except BaseException:
            response.close()
            raise
        response.release()
        return content

    async def stream(
        self, target: LeanTarget, body: bytes, timeout_s: float, idempotency_key: str
    ) -> LeanStream:
        """POST the body and return the open response to read its SSE from (close it after)."""
        response = await self._post(target, body, timeout_s, idempotency_key)
        return LeanStream(response, target, self._sdk)

    def _status_error(self, response: Response, content: bytes, target: LeanTarget) -> Exception:
        """The SDK's own exception for this status, built by the SDK client from the response."""
        error: Exception = self._sdk._make_status_error_from_response(
            _sdk_response(response, content, target)
        )
        return error

    async def aclose(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.aclose()


def _sdk_response(response: Response, content: bytes, target: LeanTarget) -> httpx2.Response:
    """An httpx2 response standing for ours, for the SDK's exceptions."""
    headers = [(name, value) for name, value in response.raw_headers if name.lower() not in _BODY_HEADERS]
    return httpx2.Response(response.status, headers=headers, content=content, request=target.request)


async def lean_target(
    sdk_client: Any, path: str, model_id: str, *, request_options: type[Any] = FinalRequestOptions
) -> LeanTarget:
    """The URL and headers the SDK client would use for a POST of `model_id`'s request to
    `path` (a path relative to its base URL, as its `post` takes), from its own request
    builder, less its telemetry and what the HTTP client sets itself."""
    options = request_options.construct(method="post", url=path, json_data={"model": model_id})
    options = await sdk_client._prepare_options(options)
    request = sdk_client._build_request(options)
    await sdk_client._prepare_request(request)
    headers: dict[str, str] = {}
    for name, value in request.headers.multi_items():
        lowered = name.lower()
        if lowered in _DROPPED or lowered.startswith("x-stainless-"):
            continue
        headers[name] = value
    if not request.url.scheme.startswith("http") or "content-type" not in {h.lower() for h in headers}:
        raise ValueError(f"Unexpected SDK request: {request.method} {request.url.scheme} {sorted(headers)}")
    return LeanTarget(
        url=str(request.url),
        headers=headers,
        idempotency_header=getattr(sdk_client, "_idempotency_header", None) or None,
    )
