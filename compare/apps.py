from django.apps import AppConfig


class CompareConfig(AppConfig):
    name = "compare"
    verbose_name = "Compare"

    def ready(self) -> None:
        # Register the Celery tasks (and the worker signals) in every process, as Django does
        # for signal handlers: the services send the tasks by name (compare.services.queueing).
        from compare import tasks  # noqa: F401
