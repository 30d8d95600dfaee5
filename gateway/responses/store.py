"""Writes: stored responses (saved when `store` is true, deleted by their key, purged once
expired). Reads are in gateway/responses/selectors.py. Sync functions (the ORM): the async
endpoint calls them through `sync_to_async`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from gateway.db import connections_refresh
from gateway.models import StoredResponse

DEFAULT_TTL_S = 30 * 24 * 3600  # as OpenAI keeps them


def responses_ttl_s() -> int:
    return int(settings.ORCHESTRATOR.get("RESPONSES_TTL_S", DEFAULT_TTL_S))


def stored_response_save(
    *,
    response_id: str,
    api_key_id: int,
    response: dict[str, Any],
    conversation: list[dict[str, Any]],
    now: datetime | None = None,
) -> StoredResponse:
    """Keep an answer for RESPONSES_TTL_S, owned by the key that made it."""
    connections_refresh()
    now = now or timezone.now()
    return StoredResponse.objects.create(
        id=response_id,
        api_key_id=api_key_id,
        model=str(response.get("model") or "")[:200],
        response=response,
        conversation=conversation,
        created_at=now,
        expires_at=now + timedelta(seconds=responses_ttl_s()),
    )


def stored_response_delete(*, response_id: str, api_key_id: int, now: datetime | None = None) -> bool:
    """Delete a key's live stored response; False when it has none by that id (another key's,
    expired or never stored)."""
    connections_refresh()
    deleted, _ = StoredResponse.objects.filter(
        pk=response_id, api_key_id=api_key_id, expires_at__gt=now or timezone.now()
    ).delete()
    return deleted > 0


def stored_responses_purge(*, now: datetime | None = None, response_id: str | None = None) -> int:
    """Delete expired stored responses (all of them, or the one `response_id` names); how many."""
    connections_refresh()
    expired = StoredResponse.objects.filter(expires_at__lte=now or timezone.now())
    if response_id is not None:
        expired = expired.filter(pk=response_id)
    deleted, _ = expired.delete()
    return deleted
