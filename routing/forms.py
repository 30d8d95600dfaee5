"""Admin forms for routing config. Field rules live on the models (clean()); these add the
rules that need related rows (capabilities, chain steps) and the prompt fields."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from routing.models import (
    EMBEDDING,
    ChainStep,
    ModelConfig,
    Provider,
    TaskRoute,
    chain_kind_errors,
    model_users,
    route_target_errors,
)
from routing.processors import processor_names
from routing.schemas import OPTION_SCHEMAS


def model_label(model: ModelConfig) -> str:
    """A model in a picker, with why it may not answer: "gpt-4o (needs key: set AZURE_OPENAI_API_KEY)"."""
    status = model.status
    return model.name if status == "ready" else f"{model.name} ({status})"


def provider_label(provider: Provider) -> str:
    status = provider.key_status if provider.enabled else "disabled"
    return provider.name if status == "ready" else f"{provider.name} ({status})"


def _label_models(field: Any) -> None:
    if field is not None:
        field.queryset = field.queryset.select_related("provider")
        field.label_from_instance = model_label


def _options_help() -> str:
    lines = []
    for kind, schema in OPTION_SCHEMAS.items():
        lines.append(f"{kind}: {', '.join(schema.model_fields)}")
    return "A JSON object. Allowed keys per kind — " + "; ".join(lines) + "."


class ProviderForm(forms.ModelForm):
    base_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text=Provider._meta.get_field("base_url").help_text,
    )

    class Meta:
        model = Provider
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["options"].help_text = _options_help()


class ModelConfigForm(forms.ModelForm):
    class Meta:
        model = ModelConfig
        fields = "__all__"
        widgets = {"capabilities": forms.CheckboxSelectMultiple}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "provider" in self.fields:
            self.fields["provider"].label_from_instance = provider_label  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is not None:
            self._chains_check(cleaned)
        if self.instance.pk is not None and cleaned.get("enabled") is False:
            users = model_users(self.instance)
            if users:
                self.add_error(
                    "enabled",
                    f"{self.instance.name} is used by {', '.join(users)}: "
                    "remove it there first, or keep it enabled.",
                )
        return cleaned

    def _chains_check(self, cleaned: dict[str, Any]) -> None:
        """The chains holding this model must still hold one kind of model of one dimension."""
        capabilities = cleaned.get("capabilities")
        if capabilities is None or "embedding_dimensions" not in self.fields:
            return
        is_embedding = any(c.slug == EMBEDDING for c in capabilities)
        dims = cleaned.get("embedding_dimensions")
        steps = ChainStep.objects.filter(chain__steps__model=self.instance).select_related("chain", "model")
        chains: dict[str, list[ModelConfig]] = {}
        for step in steps.order_by("chain__name", "position").distinct():
            chains.setdefault(step.chain.name, []).append(step.model)
        others = {m.pk for models in chains.values() for m in models if m.pk != self.instance.pk}
        embedding = set(
            ModelConfig.objects.filter(pk__in=others, capabilities__slug=EMBEDDING).values_list(
                "pk", flat=True
            )
        )
        for name, models in chains.items():
            listed = [
                (m.name, is_embedding, dims)
                if m.pk == self.instance.pk
                else (m.name, m.pk in embedding, m.embedding_dimensions)
                for m in models
            ]
            for message in chain_kind_errors(listed):
                self.add_error(None, f"Chain {name}: {message}")


def _processor_choices() -> list[tuple[str, str]]:
    return [("", "— none —")] + [(name, name) for name in sorted(processor_names())]


class TaskRouteForm(forms.ModelForm):
    system_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "cols": 90}),
        required=False,
        strip=False,
        help_text="Saving a changed text creates a new version; the old ones stay in the prompt history.",
    )
    prompt_note = forms.CharField(
        required=False,
        max_length=255,
        help_text="Optional: why the prompt changed (shown in the prompt history).",
    )

    class Meta:
        model = TaskRoute
        exclude = ["active_prompt"]
        widgets = {"capabilities": forms.CheckboxSelectMultiple}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and self.instance.active_prompt is not None:
            self.fields["system_prompt"].initial = self.instance.active_prompt.system_prompt
        _label_models(self.fields.get("model"))
        for name in ("preprocessor", "postprocessor"):
            if name in self.fields:
                self.fields[name] = forms.ChoiceField(
                    choices=_processor_choices(),
                    required=False,
                    label=self.fields[name].label,
                    help_text=(
                        "Runs on the last user message before the call"
                        if name == "preprocessor"
                        else "Runs on the final answer text"
                    )
                    + ". The list shows the processors this install has; see the configuration guide.",
                )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "model" in self.fields and "capabilities" in self.fields:
            capabilities = cleaned.get("capabilities")
            for message in route_target_errors(
                has_model=cleaned.get("model") is not None,
                capability_count=len(capabilities) if capabilities is not None else 0,
            ):
                self.add_error(None, message)
        return cleaned


class ChainStepForm(forms.ModelForm):
    class Meta:
        model = ChainStep
        fields = ["position", "model", "timeout_s"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["position"].initial = 100  # A new row goes last unless renumbered.
        _label_models(self.fields.get("model"))

    def validate_unique(self) -> None:
        """Positions only order the steps; they are renumbered 0, 1, 2… on save."""


class ChainStepFormSet(forms.BaseInlineFormSet):
    def validate_unique(self) -> None:
        """Duplicate positions are fine (ties keep the order on the page); see ChainStepForm."""

    def clean(self) -> None:
        super().clean()
        seen: dict[int, str] = {}
        kept = 0
        chosen: list[ModelConfig] = []
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            if self.can_delete and self._should_delete_form(form):  # type: ignore[attr-defined]
                continue
            model = form.cleaned_data.get("model")
            if model is None:
                continue
            kept += 1
            if model.pk in seen:
                form.add_error("model", f"{model.name} is already in this chain: remove one of them.")
            seen[model.pk] = model.name
            chosen.append(model)
        if kept == 0:
            raise ValidationError("A chain needs at least one model: add a step.")
        embedding = set(
            ModelConfig.objects.filter(
                pk__in=[m.pk for m in chosen], capabilities__slug=EMBEDDING
            ).values_list("pk", flat=True)
        )
        problems = chain_kind_errors([(m.name, m.pk in embedding, m.embedding_dimensions) for m in chosen])
        if problems:
            raise ValidationError(problems)


class VariantPromptForm(forms.Form):
    """Set (or, with an empty text, remove) one model's prompt variant for a route."""

    model = forms.ModelChoiceField(queryset=ModelConfig.objects.order_by("name"))
    system_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "cols": 90}),
        required=False,
        strip=False,
        help_text="Empty removes the variant: that model then gets the route's prompt.",
    )
    note = forms.CharField(required=False, max_length=255)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _label_models(self.fields["model"])
