"""Periodic work for metrics: keep the dashboard rollups current (every minute via beat)."""

from celery import shared_task

from metrics.rollups import rollup_run


@shared_task(ignore_result=True, acks_late=True, time_limit=900, soft_time_limit=840)
def rollup_calls() -> dict:
    """Idempotent: the run claims a lease; a second worker finds it taken and returns."""
    result = rollup_run(worker="celery")
    return {"ran": result.ran, "hours": result.hours, "records": result.records_seen}
