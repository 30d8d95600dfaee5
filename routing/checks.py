"""System checks for configuration mistakes (shown by `manage.py check` and at start-up)."""

from typing import Any

from django.core.checks import Warning, register
from django.db import DatabaseError

from routing.models import Provider


@register("orchestrator")
def check_provider_keys(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """routing.W001: an enabled provider serving enabled models has no key in the environment.

    Providers no enabled model uses are left out: they cannot fail a call.
    """
    try:
        providers = list(Provider.objects.filter(enabled=True, models__enabled=True).distinct())
    except DatabaseError:
        return []  # Not migrated yet: nothing to check.
    missing = [p for p in providers if p.needs_key]
    if not missing:
        return []
    # One warning for all of them: every management command prints the checks, and three
    # near-identical warnings on each one buried what the command itself said.
    names = ", ".join(f"{p.name!r} ({p.key_status})" for p in missing)
    return [
        Warning(
            f"{len(missing)} enabled provider(s) cannot answer, their key is missing: {names}.",
            hint="Set the variables in the environment (see .env.example), or disable the providers. "
            "Their models are skipped meanwhile.",
            id="routing.W001",
        )
    ]
