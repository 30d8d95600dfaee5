"""python manage.py ensure_admin: make sure someone can log in to a fresh install.

Creates a superuser only when none exists: named by ORCHESTRATOR_ADMIN_USER (default
"admin") with the password in ORCHESTRATOR_ADMIN_PASSWORD, or a generated password printed
once (only its hash is stored). Running it again does nothing.
"""

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # routing.W001 would repeat on every run; `check` shows it
    help = "Create an admin superuser if there is none (from ORCHESTRATOR_ADMIN_USER/PASSWORD, or generated)."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
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
        if generated:
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
