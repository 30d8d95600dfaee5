"""python manage.py welcome --url URL [--handoff FILE]: the closing block of `make run`.

One block, printed once the server answers: where to go, how to log in, and which providers
cannot answer yet (no key in the environment), so their models are skipped and the simulated
models answer instead. A first login written by `ensure_admin --handoff FILE` is shown here
once and the file deleted.
"""

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from routing.models import Provider


def login_handoff_take(path: Path) -> tuple[str, str] | None:
    """The (user, password) left by `ensure_admin --handoff`, removing the file; None if absent."""
    try:
        username, password = path.read_text(encoding="utf-8").splitlines()[:2]
    except (OSError, ValueError):
        return None
    path.unlink(missing_ok=True)
    return username, password


def providers_without_key() -> list[str]:
    """`name (VARIABLE)` for each enabled provider serving enabled models whose key is unset."""
    providers = Provider.objects.filter(enabled=True, models__enabled=True).distinct().order_by("name")
    return [f"{p.name} ({p.api_key_env})" if p.api_key_env else p.name for p in providers if p.needs_key]


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # the block says what routing.W001 would
    help = "Print the URL, the login and the providers missing a key, as one block."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True)
        parser.add_argument("--handoff", metavar="FILE", help="A first login left by ensure_admin --handoff.")

    def handle(self, *args: Any, **options: Any) -> None:
        login = login_handoff_take(Path(options["handoff"])) if options["handoff"] else None
        if login is not None:
            user_line = f"user {login[0]}   password {login[1]}"
            note = "   (shown this once: note it; only its hash is stored)"
        else:
            admins = get_user_model().objects.filter(is_superuser=True).order_by("pk")
            names = ", ".join(admins.values_list("username", flat=True)[:3]) or "none"
            user_line = f"user {names}   password as shown on the first run, or as you set it"
            note = f"\n{'':16}forgotten: .venv/bin/python manage.py changepassword {names.split(', ')[0]}"
        rows = [
            ("Orchestrator", options["url"]),
            ("Log in", user_line + note),
        ]
        missing = providers_without_key()
        if missing:
            rows.append(("No key yet", ", ".join(missing)))
            rows.append(("", "their models are skipped; the simulated models answer (see .env.example)"))
        rows.append(("Stop", "Ctrl+C"))
        rule = "─" * 72
        lines = [rule, *(f"  {label:<13} {value}" for label, value in rows), rule]
        self.stdout.write("\n".join(lines))
