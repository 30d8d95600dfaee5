"""Our own API keys for the OpenAI-compatible gateway and the native API."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


class BudgetPeriod(models.TextChoices):
    DAY = "day", "Day"
    MONTH = "month", "Month"


class ApiKey(models.Model):
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True, help_text="Shown for recognition; not secret.")
    key_hash = models.CharField(
        max_length=128, unique=True, help_text="SHA-256 of the key; the key is never stored."
    )
    budget_usd = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(Decimal("0"))]
    )
    budget_period = models.CharField(max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    rpm = models.PositiveIntegerField("requests per minute", null=True, blank=True)
    tpm = models.PositiveIntegerField("tokens per minute", null=True, blank=True)
    allowed = models.JSONField(
        default=list,
        blank=True,
        help_text='Allowed targets, e.g. ["route:code_review", "gpt-4o"]; empty allows all.',
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class BudgetAlert(models.Model):
    """Raised once per key, period and threshold (80% = warning, 100% = exhausted)."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="budget_alerts")
    period = models.CharField(max_length=8, choices=BudgetPeriod.choices)
    period_start = models.DateTimeField(help_text="Start (UTC) of the budget period the alert is about.")
    threshold = models.PositiveSmallIntegerField(help_text="Percent of the budget reached: 80 or 100.")
    spent_usd = models.DecimalField(max_digits=16, decimal_places=8)
    budget_usd = models.DecimalField(max_digits=12, decimal_places=4)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "period_start", "threshold"], name="one_alert_per_key_period_threshold"
            )
        ]

    def __str__(self) -> str:
        return f"{self.api_key.name}: {self.threshold}% of {self.budget_usd} USD ({self.period})"


class StoredResponse(models.Model):
    """A Responses API answer kept for `GET /v1/responses/{id}` and `previous_response_id`
    (`store`, true by default), readable only with the key that made it, until `expires_at`
    (settings.ORCHESTRATOR["RESPONSES_TTL_S"] after it was made). The texts are model output
    and the caller's input: shown escaped, never as markup. No provider secret is in them."""

    id = models.CharField(primary_key=True, max_length=64, help_text="resp_…, as the client got it.")
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="stored_responses")
    model = models.CharField(max_length=200, help_text="The model that answered.")
    response = models.JSONField(help_text="The response object, as answered.")
    conversation = models.JSONField(
        help_text="The conversation up to this answer, as canonical messages (without instructions)."
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "stored response"

    def __str__(self) -> str:
        return self.id
