"""Talking to the task queue: task and queue names, sending, a broker check before launching.

The services send compare's tasks by name (`CELL_EXECUTE`, `DRILL_EXECUTE`): the tasks
(compare.tasks) call the services, never the other way round. The compare app registers its
tasks when Django starts (compare.apps), so a name always finds its task, in eager mode too.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from kombu.utils.url import maybe_sanitize_url

from orchestrator_site.celery import app

logger = logging.getLogger(__name__)

CELL_EXECUTE = "compare.tasks.cell_execute"
DRILL_EXECUTE = "compare.tasks.drill_execute"
CELLS_SWEEP = "compare.tasks.cells_sweep"


class QueueUnavailable(Exception):
    """The broker cannot be reached: nothing was launched."""


def queue_name(purpose: str) -> str:
    queues: dict[str, str] = settings.CELERY_QUEUES_BY_PURPOSE
    return queues.get(purpose, settings.CELERY_TASK_DEFAULT_QUEUE)


def _redacted(url: str) -> str:
    return str(maybe_sanitize_url(url))


def tasks_send(task_name: str, arg_lists: list[list[Any]], *, queue: str) -> None:
    """Queue the task named `task_name` once per argument list on one fresh connection to the
    configured broker (not the app's pooled one, so a changed broker setting is honoured).
    Eager mode runs inline."""
    task = app.tasks[task_name]
    if app.conf.task_always_eager:
        for args in arg_lists:
            task.apply_async(args=args, queue=queue)
        return
    with app.connection_for_write() as conn:
        producer = app.amqp.Producer(conn)
        for args in arg_lists:
            task.apply_async(args=args, queue=queue, producer=producer)


def broker_check() -> None:
    """Raise QueueUnavailable unless the broker answers (eager mode needs no broker)."""
    if app.conf.task_always_eager:
        return
    url = str(app.conf.broker_url or "")
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=4)
    except Exception as exc:
        logger.warning("broker unreachable at %s: %s", _redacted(url), exc)
        raise QueueUnavailable(
            f"The task queue is unreachable ({_redacted(url)}: {exc}). "
            "Nothing was launched; start Redis (or unset REDIS_URL for the embedded queue) and try again."
        ) from exc
