"""Names shared by the apps that record calls and the app that stores them.

`Source` (who made a call) is stored on every CallRecord and set by the engine's callers, so
it lives here, importable without the ORM models: routing, gateway, playground and compare
may import `metrics.enums` (and metrics' recording service and selectors), never the other
way round (see docs/architecture.md).
"""

from django.db import models


class Source(models.TextChoices):
    PLAYGROUND = "playground", "Playground"
    GATEWAY = "gateway", "Gateway"
    API = "api", "Python API"
    BATCH = "batch", "Batch (compare runs)"
    DRILL = "drill", "Fault drill"
    SIMULATION = "simulation", "Simulated traffic"


# What production dashboards show by default; the rest is rehearsal and demo traffic.
LIVE_SOURCES: tuple[str, ...] = (Source.GATEWAY, Source.API, Source.PLAYGROUND)
TEST_SOURCES: tuple[str, ...] = tuple(s for s in Source.values if s not in LIVE_SOURCES)
