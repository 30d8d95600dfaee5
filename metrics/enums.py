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


class Endpoint(models.TextChoices):
    """The gateway endpoint a call came through (CallRecord.endpoint): the OpenAI- and
    Anthropic-style /v1/ endpoints and the native API's (`api.…`, /api/v1/); "" for the Python
    API, the playground and compare runs."""

    CHAT_COMPLETIONS = "chat.completions", "Chat completions"
    EMBEDDINGS = "embeddings", "Embeddings"
    MESSAGES = "messages", "Messages (Anthropic)"
    RESPONSES = "responses", "Responses"
    COMPLETIONS = "completions", "Completions (legacy)"
    API_ROUTE = "api.route", "Native API: route"
    API_CONSENSUS = "api.consensus", "Native API: consensus"
    API_PARALLEL = "api.parallel", "Native API: parallel"


# What production dashboards show by default; the rest is rehearsal and demo traffic.
LIVE_SOURCES: tuple[str, ...] = (Source.GATEWAY, Source.API, Source.PLAYGROUND)
TEST_SOURCES: tuple[str, ...] = tuple(s for s in Source.values if s not in LIVE_SOURCES)
