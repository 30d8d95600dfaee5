"""Routing configuration: everything an operator edits to decide which model answers what.

Rules that span fields live in `clean()` so the admin and the YAML importer report them
the same way; writes go through `routing.services`.
"""

import os
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from simple_history.models import HistoricalRecords

from routing.processors import processor_names
from routing.providers.registry import KINDS, kind_choices
from routing.schemas import provider_options_errors

slug_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_.-]*$",
    "Use lower-case letters, digits, '_', '-' or '.', starting with a letter or digit.",
)
name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$", "Use letters, digits, '_', '-', '.', ':' or '/', with no spaces."
)


# The kinds, derived from their one registry entry each (routing.providers.registry.KINDS):
# ProviderKind.OPENAI == "openai", … for code and tests that name a kind.
ProviderKind: Any = models.TextChoices(  # type: ignore[call-overload]
    "ProviderKind", [(name.upper(), (name, kind.label)) for name, kind in KINDS.items()]
)

# Kinds that need no secret at all.
KEYLESS_KINDS = {name for name, kind in KINDS.items() if kind.keyless}


class OptimizeFor(models.TextChoices):
    COST = "cost", "Cost"
    LATENCY = "latency", "Latency"
    QUALITY = "quality", "Quality"


class Provider(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    kind = models.CharField(max_length=32, choices=kind_choices)
    base_url = models.URLField(blank=True, help_text="Leave empty for the provider's public endpoint.")
    api_version = models.CharField(max_length=32, blank=True, help_text="Azure OpenAI only, e.g. 2024-10-21.")
    api_key_env = models.CharField(
        "API key variable",
        max_length=100,
        blank=True,
        validators=[
            RegexValidator(r"^[A-Z_][A-Z0-9_]*$", "An environment variable name, e.g. OPENAI_API_KEY.")
        ],
        help_text="The NAME of the environment variable holding the secret. The secret itself is never stored.",
    )
    options = models.JSONField(default=dict, blank=True, help_text="Kind-specific options (validated).")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def needs_key(self) -> bool:
        """True when the provider needs a secret that the environment does not have."""
        if self.kind in KEYLESS_KINDS:
            return False
        if not self.api_key_env:
            # Local servers (Ollama, vLLM) often take no key at all.
            kind = KINDS.get(self.kind)
            return not (kind is not None and kind.key_optional)
        return not os.environ.get(self.api_key_env)

    @property
    def key_status(self) -> str:
        if self.kind in KEYLESS_KINDS:
            return "simulated"
        if self.needs_key:
            return f"needs key: set {self.api_key_env}" if self.api_key_env else "needs key: name a variable"
        return "ready"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        kind = KINDS.get(self.kind)
        if kind is not None and kind.base_url_required and not self.base_url:
            errors.setdefault("base_url", []).append(kind.base_url_required)
        if kind is not None and kind.api_version_required and not self.api_version:
            errors.setdefault("api_version", []).append(kind.api_version_required)
        option_errors = provider_options_errors(self.kind, self.options)
        if option_errors:
            errors.setdefault("options", []).extend(option_errors)
        if errors:
            raise ValidationError(errors)


class Capability(models.Model):
    slug = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    description = models.CharField(max_length=255, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "capabilities"

    def __str__(self) -> str:
        return self.slug


price_validators = [MinValueValidator(Decimal("0"), "A price cannot be below zero.")]


class ModelConfig(models.Model):
    name = models.CharField(
        max_length=100, unique=True, validators=[name_validator], help_text="What routes and callers use."
    )
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="models")
    model_id = models.CharField(
        max_length=200, help_text="The provider's model id (the deployment name for Azure)."
    )
    capabilities = models.ManyToManyField(Capability, blank=True, related_name="models")
    context_window = models.PositiveIntegerField(default=8192, validators=[MinValueValidator(1)])
    latency_ms = models.PositiveIntegerField(
        "prior latency (ms)",
        default=1000,
        help_text="Used for latency routing until enough calls are measured.",
    )
    input_cost_per_1k = models.DecimalField(
        max_digits=12,
        decimal_places=8,
        null=True,
        blank=True,
        validators=price_validators,
        help_text="USD per 1K input tokens. Empty: use the bundled price catalogue.",
    )
    output_cost_per_1k = models.DecimalField(
        max_digits=12,
        decimal_places=8,
        null=True,
        blank=True,
        validators=price_validators,
        help_text="USD per 1K output tokens. Empty: use the bundled price catalogue.",
    )
    quality_rank = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="1 is best. Used for quality routing until arena ratings have enough votes.",
    )
    embedding_dimensions = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Embedding models (capability 'embedding'): the size of their vectors. A chain "
        "of embedding models may only hold models of one size.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(m2m_fields=[capabilities])

    class Meta:
        ordering = ["name"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.name

    @property
    def status(self) -> str:
        """What a picker shows: "disabled", "provider disabled", "simulated", "needs key: set X", "ready"."""
        if not self.enabled:
            return "disabled"
        if not self.provider.enabled:
            return "provider disabled"
        return self.provider.key_status

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if (self.input_cost_per_1k is None) != (self.output_cost_per_1k is None):
            missing = "input_cost_per_1k" if self.input_cost_per_1k is None else "output_cost_per_1k"
            errors[missing] = [
                "Set both the input and the output price, or leave both empty to use the price catalogue."
            ]
        if errors:
            raise ValidationError(errors)


# The capability that makes a model an embedding model (POST /v1/embeddings, orchestrator.aembed):
# chat requests never use one, and embeddings use nothing else.
EMBEDDING = "embedding"


def chain_kind_errors(models: list[tuple[str, bool, int | None]]) -> list[str]:
    """The rule the admin form and the importer share for a chain's models, given as
    (name, is an embedding model, embedding_dimensions): chat models or embedding models, not
    both; embedding models all of one (configured) size, since a fallback must answer vectors
    the caller can compare with the ones it has."""
    embedding = [(name, dims) for name, is_embedding, dims in models if is_embedding]
    if not embedding:
        return []
    chat = [name for name, is_embedding, _ in models if not is_embedding]
    if chat:
        embedders = [n for n, _ in embedding]
        return [
            "A chain holds chat models or embedding models, not both: "
            f"{', '.join(embedders)} {'is an embedding model' if len(embedders) == 1 else 'are embedding models'}, "
            f"{', '.join(chat)} {'is' if len(chat) == 1 else 'are'} not."
        ]
    unset = [name for name, dims in embedding if dims is None]
    if unset:
        return [
            f"Set the embedding dimensions of {', '.join(unset)}: a chain of embedding models needs them."
        ]
    sizes = {dims for _, dims in embedding}
    if len(sizes) > 1:
        listed = ", ".join(f"{name} ({dims})" for name, dims in embedding)
        return [
            f"The embedding models of a chain must have one dimension, so that a fallback answers "
            f"vectors of the same size: {listed}."
        ]
    return []


def model_users(model: "ModelConfig") -> list[str]:
    """Where a model is referenced by a chain step or as a route's fixed model, for messages."""
    chains = sorted(set(ChainStep.objects.filter(model=model).values_list("chain__name", flat=True)))
    routes = sorted(TaskRoute.objects.filter(model=model).values_list("task_type", flat=True))
    return [f"chain {name}" for name in chains] + [f"route {task_type}" for task_type in routes]


class FallbackChain(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ChainStep(models.Model):
    chain = models.ForeignKey(FallbackChain, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    model = models.ForeignKey(ModelConfig, on_delete=models.PROTECT, related_name="chain_steps")
    timeout_s = models.FloatField(
        "timeout (s)",
        null=True,
        blank=True,
        validators=[MinValueValidator(0.1)],
        help_text="Per-step timeout; empty uses the default.",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["chain", "position"]
        constraints = [models.UniqueConstraint(fields=["chain", "position"], name="unique_step_position")]

    def __str__(self) -> str:
        return f"{self.chain.name}[{self.position}] {self.model.name}"

    def clean(self) -> None:
        if self.model_id and self.model is not None and not self.model.enabled:
            raise ValidationError(
                {"model": f"Model {self.model.name} is disabled: enable it or pick another."}
            )


class TaskRoute(models.Model):
    task_type = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    description = models.CharField(max_length=255, blank=True)
    model = models.ForeignKey(
        ModelConfig,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="routes",
        help_text="A fixed model. Leave empty to select by capabilities.",
    )
    capabilities = models.ManyToManyField(Capability, blank=True, related_name="routes")
    optimize_for = models.CharField(max_length=16, choices=OptimizeFor.choices, default=OptimizeFor.COST)
    fallback_chain = models.ForeignKey(
        FallbackChain, null=True, blank=True, on_delete=models.PROTECT, related_name="routes"
    )
    preprocessor = models.CharField(max_length=100, blank=True)
    postprocessor = models.CharField(max_length=100, blank=True)
    active_prompt = models.ForeignKey(
        "PromptVersion",
        null=True,
        blank=True,
        # RESTRICT, not PROTECT: deleting the route deletes its versions (CASCADE) in one go.
        on_delete=models.RESTRICT,
        related_name="+",
        help_text="The system prompt version in use.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(m2m_fields=[capabilities])

    class Meta:
        ordering = ["task_type"]
        verbose_name = "task route"

    def __str__(self) -> str:
        return self.task_type

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        known = processor_names()
        for field in ("preprocessor", "postprocessor"):
            value = getattr(self, field)
            if value and value not in known:
                errors.setdefault(field, []).append(
                    f"Unknown processor {value!r}. Known: {', '.join(sorted(known))}."
                )
        if self.model is not None and not self.model.enabled:
            errors.setdefault("model", []).append(
                f"Model {self.model.name} is disabled: enable it or pick another model."
            )
        if errors:
            raise ValidationError(errors)


def route_target_errors(*, has_model: bool, capability_count: int) -> list[str]:
    """The rule the admin form and the importer share: a fixed model XOR a capability selection.

    It needs the route's capabilities, which a model's clean() cannot see before they are saved.
    """
    if not has_model and capability_count == 0:
        return ["Pick a fixed model, or the capabilities a model must have (selection by optimize_for)."]
    if has_model and capability_count:
        return [
            "Pick either a fixed model or capabilities, not both: "
            "clear the capabilities to always use the model, or clear the model to select by capability."
        ]
    return []


class PromptVersion(models.Model):
    """An immutable system prompt. Editing a route's prompt creates a new version.

    `model` empty: the route's default prompt; set: a variant for that model only.
    """

    route = models.ForeignKey(TaskRoute, on_delete=models.CASCADE, related_name="prompt_versions")
    model = models.ForeignKey(
        ModelConfig, null=True, blank=True, on_delete=models.CASCADE, related_name="prompt_variants"
    )
    version = models.PositiveIntegerField()
    system_prompt = models.TextField()
    note = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["route", "model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["route", "model", "version"], name="unique_prompt_version"),
        ]

    def __str__(self) -> str:
        target = f" for {self.model.name}" if self.model is not None else ""
        return f"{self.route.task_type} v{self.version}{target}"


class PromptVariant(models.Model):
    """Which version of a per-model prompt variant is active for a route."""

    route = models.ForeignKey(TaskRoute, on_delete=models.CASCADE, related_name="variants")
    model = models.ForeignKey(ModelConfig, on_delete=models.CASCADE, related_name="+")
    active_prompt = models.ForeignKey(PromptVersion, on_delete=models.RESTRICT, related_name="+")

    history = HistoricalRecords()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["route", "model"], name="unique_variant_per_model")]

    def __str__(self) -> str:
        return f"{self.route.task_type} → {self.model.name}"
