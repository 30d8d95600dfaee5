"""python manage.py create_api_key NAME [--budget-usd X --budget-period day|month] [--rpm N] [--tpm N]
[--allow route:code_review,gpt-4o,...] — prints the key once."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.services import api_key_create


def _decimal(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise CommandError(f"--budget-usd must be a number, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise CommandError(f"--budget-usd must be zero or more, got {value!r}")
    return amount


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise CommandError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise CommandError(f"expected a positive integer, got {value!r}")
    return number


class Command(BaseCommand):
    help = "Create a gateway API key and print it (once: only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--budget-usd", type=_decimal, default=None)
        parser.add_argument("--budget-period", choices=["day", "month"], default="month")
        parser.add_argument("--rpm", type=_positive, default=None, help="requests per minute")
        parser.add_argument("--tpm", type=_positive, default=None, help="tokens per minute")
        parser.add_argument(
            "--allow",
            default="",
            help="comma-separated targets: model names, route:<task_type>, chain:<name>",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        allowed = [a.strip() for a in options["allow"].split(",") if a.strip()]
        try:
            key, raw = api_key_create(
                name=options["name"],
                budget_usd=options["budget_usd"],
                budget_period=options["budget_period"],
                rpm=options["rpm"],
                tpm=options["tpm"],
                allowed=allowed,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stderr.write(f"Created API key {key.name!r} ({key.prefix}…). It is shown only once:")
        self.stdout.write(raw)
