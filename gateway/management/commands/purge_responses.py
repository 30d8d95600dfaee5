"""python manage.py purge_responses — delete stored /v1/responses answers past their time
(RESPONSES_TTL_S); celery beat runs the same every hour (gateway.tasks.responses_purge)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from gateway.responses.store import stored_responses_purge


class Command(BaseCommand):
    help = "Delete stored Responses API answers that have expired."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = stored_responses_purge()
        self.stdout.write(f"Deleted {deleted} expired stored response{'s' if deleted != 1 else ''}.")
