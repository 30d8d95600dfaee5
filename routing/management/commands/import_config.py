"""python manage.py import_config FILE.yaml [--dry-run]"""

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.config_io import ConfigImportError, config_import
from routing.models import ModelConfig, Provider


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # routing.W001 would repeat on every run; `check` shows it
    help = "Load providers, capabilities, models, routes and chains from a YAML file (upsert by name)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="YAML file; '-' reads standard input. Layout: docs/configuration.md")
        parser.add_argument("--dry-run", action="store_true", help="Print what would change; write nothing.")
        parser.add_argument("--quiet-unchanged", action="store_true", help="Do not list unchanged entries.")
        parser.add_argument(
            "--brief", action="store_true", help="One line: the summary, or nothing when the config exists."
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Only load into an empty configuration (a first run); otherwise do nothing. "
            "`make run` uses this so restarts never undo edits made in the admin.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        if options["if_empty"] and (Provider.objects.exists() or ModelConfig.objects.exists()):
            if not options["brief"]:
                self.stdout.write(f"Routing config exists already: {path} not loaded (--if-empty).")
            return
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        try:
            report = config_import(text=text, dry_run=options["dry_run"], source=Path(path).name)
        except ConfigImportError as exc:
            lines = "\n".join(f"  - {error}" for error in exc.errors)
            raise CommandError(
                f"{path} was rejected ({len(exc.errors)} problem(s)); nothing was changed:\n{lines}"
            ) from exc
        for item in report.items:
            if options["brief"] or (item.action == "unchanged" and options["quiet_unchanged"]):
                continue
            self.stdout.write(item.describe())
        prefix = f"{path}: " if options["brief"] else ""
        self.stdout.write(self.style.SUCCESS(prefix + report.summary()))
