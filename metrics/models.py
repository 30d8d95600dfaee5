"""What happened and what it cost: one CallRecord per attempt at a provider."""

from django.db import models
from django.utils import timezone

from metrics.enums import LIVE_SOURCES, TEST_SOURCES, Endpoint, Source

__all__ = ["LIVE_SOURCES", "TEST_SOURCES", "Endpoint", "Source"]  # re-exported: where they were defined first


class CallStatus(models.TextChoices):
    OK = "ok", "OK"
    ERROR = "error", "Error"
    TIMEOUT = "timeout", "Timeout"
    CANCELLED = "cancelled", "Cancelled"


class ErrorClass(models.TextChoices):
    NONE = "", "—"
    TRANSIENT = "transient", "Transient"
    MODEL_PERMANENT = "model_permanent", "Model-permanent"
    REQUEST_INVALID = "request_invalid", "Request-invalid"


class CallRecord(models.Model):
    trace_id = models.CharField(max_length=32, db_index=True, help_text="Groups the attempts of one request.")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)
    # The gateway endpoint the call came through ("chat.completions", "embeddings", …); "" for
    # calls that did not come through the gateway (the Python API, the playground, compare).
    endpoint = models.CharField(max_length=32, blank=True, default="")
    # Role of this attempt within its request: primary, fallback, consensus, judge, arena…
    role = models.CharField(max_length=16, blank=True, default="")
    route = models.ForeignKey(
        "routing.TaskRoute", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    task_type = models.CharField(max_length=100, blank=True, default="")
    chain_name = models.CharField(max_length=100, blank=True, default="")
    chain_step = models.PositiveIntegerField(null=True, blank=True)
    prompt_version = models.ForeignKey(
        "routing.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.ForeignKey(
        "routing.ModelConfig", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Names are copied so records keep their meaning after config is renamed or deleted.
    model_name = models.CharField(max_length=100)
    provider_name = models.CharField(max_length=100, blank=True, default="")
    provider_kind = models.CharField(max_length=32, blank=True, default="")
    provider_model_id = models.CharField(max_length=200, blank=True, default="")
    api_key = models.ForeignKey(
        "gateway.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempt = models.PositiveIntegerField(
        default=1, help_text="1 for the first try at this model in this request."
    )
    status = models.CharField(max_length=16, choices=CallStatus.choices)
    error_class = models.CharField(max_length=32, choices=ErrorClass.choices, blank=True, default="")
    http_status = models.PositiveIntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True, default="")
    latency_ms = models.FloatField(null=True, blank=True)
    ttft_ms = models.FloatField("time to first token (ms)", null=True, blank=True)
    stream = models.BooleanField(default=False)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(
        max_digits=16, decimal_places=10, null=True, blank=True, help_text="Empty when the price is unknown."
    )
    input_price_per_1k = models.DecimalField(max_digits=12, decimal_places=8, null=True, blank=True)
    output_price_per_1k = models.DecimalField(max_digits=12, decimal_places=8, null=True, blank=True)
    price_source = models.CharField(
        max_length=16, blank=True, default="", help_text="override, catalogue or unknown"
    )
    request_text = models.TextField(blank=True, default="")
    response_text = models.TextField(blank=True, default="")
    simulated = models.BooleanField(default=False)
    text_replaced = models.BooleanField(
        default=False,
        help_text="Some text of this record held characters the database cannot store (NUL, lone "
        "surrogates): each was stored as U+FFFD.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_at", "id"], name="call_created"),
            models.Index(fields=["model_name", "created_at"], name="call_model_time"),
            models.Index(fields=["task_type", "created_at"], name="call_route_time"),
            models.Index(fields=["api_key", "created_at"], name="call_key_time"),
            models.Index(fields=["status", "created_at"], name="call_status_time"),
            models.Index(fields=["provider_name", "created_at"], name="call_provider_time"),
        ]

    def __str__(self) -> str:
        return f"{self.trace_id} #{self.attempt} {self.model_name} {self.status}"


class RollupGrain(models.TextChoices):
    MINUTE = "minute", "Minute"
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


# The dimensions of a CallRollup row, in key order (its unique constraint after grain and
# bucket; metrics.rollups keys its sums by them).
ROLLUP_DIMENSIONS = (
    "model_name",
    "provider_name",
    "task_type",
    "api_key_id",
    "source",
    "prompt_version_id",
    "status",
    "chain_name",
    "chain_step",
    "endpoint",
)


class CallRollup(models.Model):
    """Aggregates of CallRecords per time bucket and dimension combination.

    Written only by `metrics.rollups`; a bucket is always recomputed whole from raw rows
    (minute and hour) or from hour rollups (day), so re-running a rollup replaces rows and
    never double-counts. Empty foreign keys are stored as 0 and missing chain steps as -1 so
    the unique constraint sees one row per combination on every database.
    Histograms are `metrics.histogram` encodings (sparse bucket index → count).
    """

    grain = models.CharField(max_length=8, choices=RollupGrain.choices)
    bucket = models.DateTimeField(help_text="Start of the bucket (UTC; a day starts at local midnight).")
    model_name = models.CharField(max_length=100)
    provider_name = models.CharField(max_length=100, blank=True, default="")
    task_type = models.CharField(max_length=100, blank=True, default="")
    api_key_id = models.BigIntegerField(default=0)
    source = models.CharField(max_length=16, blank=True, default="")
    prompt_version_id = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16)
    chain_name = models.CharField(max_length=100, blank=True, default="")
    chain_step = models.IntegerField(default=-1)
    endpoint = models.CharField(max_length=32, blank=True, default="")

    count = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    cost_unknown = models.PositiveIntegerField(default=0, help_text="Calls whose price is unknown.")
    latency_sum_ms = models.FloatField(default=0)
    latency_count = models.PositiveIntegerField(default=0)
    ttft_sum_ms = models.FloatField(default=0)
    ttft_count = models.PositiveIntegerField(default=0)
    latency_hist = models.BinaryField(default=b"")
    ttft_hist = models.BinaryField(default=b"")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "bucket", *ROLLUP_DIMENSIONS],
                name="rollup_unique_combination",
            )
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.bucket:%Y-%m-%d %H:%M} {self.model_name} {self.status} ×{self.count}"


class RollupState(models.Model):
    """The one row (pk=1) that tracks rollup progress and who is running it."""

    last_record_id = models.BigIntegerField(default=0, help_text="Records up to this id are rolled up.")
    covered_until = models.DateTimeField(
        null=True, blank=True, help_text="Rollups hold every record created before this instant."
    )
    locked_until = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=64, blank=True, default="")
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_seconds = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rollups to #{self.last_record_id} (until {self.covered_until})"


class CallRollupByModel(models.Model):
    """The same aggregates per bucket × model × source × status only: what the dashboard
    charts read without a route, provider or key filter, a few rows per bucket whatever the
    number of routes or keys. Written with CallRollup by `metrics.rollups`."""

    grain = models.CharField(max_length=8, choices=RollupGrain.choices)
    bucket = models.DateTimeField()
    model_name = models.CharField(max_length=100)
    source = models.CharField(max_length=16, blank=True, default="")
    status = models.CharField(max_length=16)
    count = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    cost_unknown = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    latency_count = models.PositiveIntegerField(default=0)
    ttft_sum_ms = models.FloatField(default=0)
    ttft_count = models.PositiveIntegerField(default=0)
    latency_hist = models.BinaryField(default=b"")
    ttft_hist = models.BinaryField(default=b"")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "bucket", "model_name", "source", "status"],
                name="rollup_model_source_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.bucket:%Y-%m-%d %H:%M} {self.model_name} {self.status} ×{self.count}"
