import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")

if os.environ.get("ORCHESTRATOR_EMBEDDED_WORKER"):
    # `make run`'s embedded worker runs as the user who ran it (root in many containers);
    # production workers (docs/production.md) run without this and keep the warning.
    warnings.filterwarnings("ignore", category=SecurityWarning)

app = Celery("orchestrator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
