import logging
import os
from concurrent.futures import ThreadPoolExecutor

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")

# Static files (our CSS/JS, htmx, plotly.js) are served by the app itself so a plain
# `uvicorn` deployment works without a separate file server or any CDN.
django_application = ASGIStaticFilesHandler(get_asgi_application())

# /v1/ (the OpenAI-compatible gateway) is answered by a lean ASGI front ahead of Django's
# middleware stack; everything else is Django. Imported after setup (it uses the ORM).
from django.db import connections  # noqa: E402

from gateway.asgi import gateway_front  # noqa: E402
from routing.models import Provider  # noqa: E402
from routing.providers.registry import factory_for  # noqa: E402

log = logging.getLogger("orchestrator_site")


def _enabled_kinds() -> set[str]:
    try:
        return set(Provider.objects.filter(enabled=True).values_list("kind", flat=True))
    finally:
        connections.close_all()


def provider_clients_import() -> None:
    """Import the client modules (and so the SDKs) of the enabled providers' kinds before
    serving. Imported on a first request instead, they stop the event loop for ~0.4 s (the
    OpenAI SDK) to over 1 s (Anthropic's) while other requests wait on it. Only the kinds in
    use: each SDK costs resident memory. Best effort (no database yet: nothing is imported)."""
    try:
        # A thread of its own: some servers import the app inside their running event loop,
        # where Django refuses a synchronous query.
        with ThreadPoolExecutor(1) as pool:
            kinds = pool.submit(_enabled_kinds).result(timeout=30)
    except Exception as exc:
        log.debug("provider clients not imported ahead: %s", exc)
        return
    for kind in sorted(kinds):
        try:
            factory_for(kind)
        except Exception as exc:
            log.debug("the %s client could not be imported ahead: %s", kind, exc)


provider_clients_import()
application = gateway_front(django_application)
