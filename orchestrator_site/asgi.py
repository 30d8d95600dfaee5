import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")

# Static files (our CSS/JS, htmx, plotly.js) are served by the app itself so a plain
# `uvicorn` deployment works without a separate file server or any CDN.
django_application = ASGIStaticFilesHandler(get_asgi_application())

# /v1/ (the OpenAI-compatible gateway) is answered by a lean ASGI front ahead of Django's
# middleware stack; everything else is Django. Imported after setup (it uses the ORM).
from gateway.asgi import gateway_front  # noqa: E402

application = gateway_front(django_application)
