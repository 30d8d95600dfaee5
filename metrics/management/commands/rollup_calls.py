"""Bring the dashboard rollups up to date now (the worker does this every minute)."""

from typing import Any

from django.core.management.base import BaseCommand

from metrics.rollups import rollup_reset, rollup_run


class Command(BaseCommand):
    help = "Roll call records up for the dashboards. --rebuild forgets every rollup first."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rebuild", action="store_true", help="Rebuild every rollup from raw records.")

    def handle(self, *args: Any, rebuild: bool = False, **options: Any) -> None:
        if rebuild:
            rollup_reset()
        result = rollup_run(worker="command")
        if not result.ran:
            self.stdout.write("Another worker is rolling up right now; nothing to do.")
            return
        self.stdout.write(
            f"Rolled up {result.records_seen:,} records in {result.hours:,} hours "
            f"({result.days} days) in {result.seconds:.1f}s."
        )
