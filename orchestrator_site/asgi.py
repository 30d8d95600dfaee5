import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")

# Static files (our CSS/JS, htmx, plotly.js) are served by the app itself so a plain
# `uvicorn` deployment works without a separate file server or any CDN.
application = ASGIStaticFilesHandler(get_asgi_application())
