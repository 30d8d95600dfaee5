"""python manage.py export_config [FILE]"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.config_io import config_export


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # routing.W001 would repeat on every run; `check` shows it
    help = "Write the routing config as YAML (to FILE, or standard output). Secrets are never included."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="Output file; standard output when omitted.")

    def handle(self, *args: Any, **options: Any) -> None:
        text = config_export()
        if not options["file"]:
            self.stdout.write(text, ending="")
            return
        try:
            Path(options["file"]).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {options['file']}: {exc}") from exc
        self.stderr.write(f"Wrote {options['file']}.")
