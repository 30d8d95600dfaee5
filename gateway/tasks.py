"""Periodic work for the gateway: delete stored responses past their time (hourly via beat)."""

from celery import shared_task

from gateway.responses.store import stored_responses_purge


@shared_task(ignore_result=True, acks_late=True, time_limit=600, soft_time_limit=540)
def responses_purge() -> dict:
    """Idempotent: deletes what has expired by now; a second run finds nothing."""
    return {"deleted": stored_responses_purge()}
