"""Reads: a key's stored response (never another key's, never an expired one)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from gateway.db import connections_refresh
from gateway.models import StoredResponse


def stored_response_get(
    *, response_id: str, api_key_id: int, now: datetime | None = None
) -> StoredResponse | None:
    connections_refresh()
    return StoredResponse.objects.filter(
        pk=response_id, api_key_id=api_key_id, expires_at__gt=now or timezone.now()
    ).first()
