"""A minimal ASGI streaming view over orchestrator.astream, for the disconnect test."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path

from routing import orchestrator


@login_not_required
async def stream_view(request):
    async def body():
        async for event in orchestrator.astream([{"role": "user", "content": "tell me"}], model="talker"):
            if event.kind == "delta":
                yield event.text.encode()

    return StreamingHttpResponse(body(), content_type="text/plain")


@login_not_required
def sync_view(request):
    """A plain sync view (Django runs it in a thread under the ASGI server's loop)."""
    return HttpResponse(
        orchestrator.complete([{"role": "user", "content": "from a sync view"}], model="talker").text
    )


urlpatterns = [path("stream/", stream_view), path("sync/", sync_view)]
