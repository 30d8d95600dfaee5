"""System checks for configuration mistakes (shown by `manage.py check` and at start-up)."""

from typing import Any

from django.core.checks import Warning, register
from django.db import DatabaseError


@register("orchestrator")
def check_provider_keys(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """routing.W001: an enabled provider serving enabled models has no key in the environment.

    Providers no enabled model uses are left out: they cannot fail a call.
    """
    from routing.models import Provider

    problems = []
    try:
        providers = list(Provider.objects.filter(enabled=True, models__enabled=True).distinct())
    except DatabaseError:
        return []  # Not migrated yet: nothing to check.
    for provider in providers:
        if provider.needs_key:
            problems.append(
                Warning(
                    f"Provider {provider.name!r} is enabled but its key is missing ({provider.key_status}).",
                    hint="Set the variable in the environment, or disable the provider.",
                    id="routing.W001",
                )
            )
    return problems
