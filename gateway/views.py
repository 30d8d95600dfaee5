"""Django views for /v1/ (the same handlers the ASGI front in gateway/asgi.py serves faster).

They authenticate with bearer keys, never cookies: CSRF-exempt and open to anonymous
sessions (the key check is the gate).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from gateway import chat, listing


def _to_django(resp: chat.GatewayResponse) -> HttpResponseBase:
    out: HttpResponseBase
    if resp.stream is not None:
        out = StreamingHttpResponse(resp.stream, status=resp.status, content_type=resp.content_type)
    else:
        out = HttpResponse(resp.body, status=resp.status, content_type=resp.content_type)
    for name, value in resp.headers.items():
        out[name] = value
    return out


@csrf_exempt
@login_not_required
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    if request.method != "POST":
        return _to_django(chat.method_not_allowed("POST"))
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0
    if size > chat.max_body_bytes():
        return _to_django(chat.error_response(chat.body_too_large(size)))
    try:
        body = request.body
    except RequestDataTooBig:
        return _to_django(chat.error_response(chat.body_too_large(size)))
    resp = await chat.chat_completions(body=body, authorization=request.headers.get("authorization"))
    await chat.response_finish(resp)  # Django sends after the view returns: account first
    return _to_django(resp)


@csrf_exempt
@login_not_required
async def models(request: HttpRequest) -> HttpResponseBase:
    if request.method != "GET":
        return _to_django(chat.method_not_allowed("GET"))
    return _to_django(await listing.models_list(authorization=request.headers.get("authorization")))


@csrf_exempt
@login_not_required
async def model(request: HttpRequest, model_id: str) -> HttpResponseBase:
    if request.method != "GET":
        return _to_django(chat.method_not_allowed("GET"))
    return _to_django(
        await listing.model_retrieve(model_id=model_id, authorization=request.headers.get("authorization"))
    )
