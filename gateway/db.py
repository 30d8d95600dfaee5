"""Database hygiene for work done outside Django's request cycle (the ASGI front)."""

from django.db import connections


def connections_refresh() -> None:
    """Close unusable or expired connections before using the ORM, like Django does at the
    start of a request (never inside a transaction, e.g. a test's)."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()
