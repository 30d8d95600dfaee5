"""python manage.py ensure_admin: make sure someone can log in to a fresh install.

Creates a superuser only when none exists: named by ORCHESTRATOR_ADMIN_USER (default
"admin") with the password in ORCHESTRATOR_ADMIN_PASSWORD, or a generated password printed
once (only its hash is stored). Running it again does nothing.

`--handoff FILE` (used by `make run`): instead of printing a generated password, write the
login to FILE (mode 0600) for `manage.py welcome` to print in its closing block and delete, so
the password is the last thing `make run` shows rather than lost in the start-up output.
"""

import os
import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # routing.W001 would repeat on every run; `check` shows it
    help = "Create an admin superuser if there is none (from ORCHESTRATOR_ADMIN_USER/PASSWORD, or generated)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing when there is nothing to do.")
        parser.add_argument(
            "--handoff",
            metavar="FILE",
            help="Write a generated login to FILE (mode 0600) for `manage.py welcome`, instead of printing it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            if not options["quiet"]:
                self.stdout.write("An admin user exists already: nothing to do.")
            return
        username = os.environ.get("ORCHESTRATOR_ADMIN_USER", "").strip() or "admin"
        password = os.environ.get("ORCHESTRATOR_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(18)
        else:
            try:
                validate_password(password, User(username=username))
            except ValidationError as exc:
                raise CommandError(
                    "ORCHESTRATOR_ADMIN_PASSWORD is too weak: " + " ".join(exc.messages)
                ) from exc
        if User.objects.filter(username=username).exists():
            raise CommandError(
                f"User {username!r} exists but is not a superuser. Set ORCHESTRATOR_ADMIN_USER to another "
                "name, or promote that user with `python manage.py createsuperuser`."
            )
        User.objects.create_superuser(username=username, email="", password=password)
        if generated and options["handoff"]:
            login_handoff_write(Path(options["handoff"]), username=username, password=password)
        elif generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin login  user: {username}  password: {password}\n"
                    "This password is shown once and not stored in plain text: note it now "
                    "(or set ORCHESTRATOR_ADMIN_USER/ORCHESTRATOR_ADMIN_PASSWORD before the first run)."
                )
            )
        else:
            self.stdout.write(
                f"Created admin login {username!r} (password from ORCHESTRATOR_ADMIN_PASSWORD)."
            )


def login_handoff_write(path: Path, *, username: str, password: str) -> None:
    """The first login, readable by the owner only, for `welcome` to show once and delete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"{username}\n{password}\n")
