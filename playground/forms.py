"""Parsing and checking what the user asked for, before anything is sent."""

from __future__ import annotations

import base64
import json
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from playground.models import Aggregator, RunMode
from playground.selectors import estimate_tokens, model_unusable_reason
from routing.errors import InvalidRequest
from routing.messages import IMAGE_MAX_BYTES, messages_parse, tool_choice_parse, tools_parse
from routing.models import FallbackChain, ModelConfig, TaskRoute

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
# Modes whose columns take an image and tools (a consensus or an arena round compares text).
ATTACHMENT_MODES = (RunMode.MODELS, RunMode.ROUTE, RunMode.CHAIN)

ASK_MODES = [c for c in RunMode.choices if c[0] != RunMode.ARENA]


def max_models() -> int:
    return int(settings.ORCHESTRATOR.get("PLAYGROUND_MAX_MODELS", 6))


def _check_models(names: list[str], text_tokens: int, errors: list[str]) -> list[ModelConfig]:
    found = {m.name: m for m in ModelConfig.objects.select_related("provider").filter(name__in=names)}
    chosen = []
    for name in names:
        model = found.get(name)
        if model is None:
            errors.append(f"Unknown model {name!r}.")
            continue
        reason = model_unusable_reason(model)
        if reason:
            errors.append(f"{name} cannot answer: {reason}.")
            continue
        if text_tokens > model.context_window:
            errors.append(
                f"The prompt is about {text_tokens:,} tokens; {name} takes at most {model.context_window:,}."
            )
            continue
        chosen.append(model)
    return chosen


def _chain_can_answer(chain: FallbackChain | None, text_tokens: int) -> bool:
    if chain is None:
        return False
    return any(
        not model_unusable_reason(step.model) and text_tokens <= step.model.context_window
        for step in chain.steps.all()
    )


def _megabytes(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


def image_data_uri(upload: UploadedFile | None, errors: list[str]) -> str:
    """The attached image as a data URI, checked as the engine checks one ("" when none)."""
    if upload is None:
        return ""
    size = upload.size or 0
    if size > IMAGE_MAX_BYTES:
        errors.append(
            f"The image is {_megabytes(size)}; the limit is {IMAGE_MAX_BYTES / 1_048_576:.0f} MB. "
            "Attach a smaller one."
        )
        return ""
    media_type = (upload.content_type or "").lower()
    if media_type not in IMAGE_TYPES:
        errors.append(
            f"Attach a PNG, JPEG, GIF or WebP image (this file is {media_type or 'of no known type'})."
        )
        return ""
    uri = f"data:{media_type};base64,{base64.b64encode(upload.read()).decode('ascii')}"
    try:
        messages_parse([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}}]}])
    except InvalidRequest as exc:
        errors.append(f"The image cannot be sent: {exc}")
        return ""
    return uri


def tools_from_text(text: str, choice: str, errors: list[str]) -> tuple[list[dict[str, Any]], Any]:
    """Tool definitions typed as JSON (an array of OpenAI function tools, or one tool) and the
    tool_choice ("auto", "none", "required" or a tool's name), checked as the gateway checks them."""
    raw: Any = None
    if text.strip():
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(f"Tools: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).")
            return [], None
        if isinstance(raw, dict):
            raw = [raw]
    try:
        tools = tools_parse(raw) or []
        choice = choice.strip()
        raw_choice: Any = None
        if choice:
            raw_choice = (
                choice
                if choice in ("auto", "none", "required")
                else {"type": "function", "function": {"name": choice}}
            )
        return tools, tool_choice_parse(raw_choice, tools=tools or None)
    except InvalidRequest as exc:
        errors.append(f"Tools: {exc}")
        return [], None


class AskForm(forms.Form):
    mode = forms.ChoiceField(choices=ASK_MODES, initial=RunMode.MODELS)
    models = forms.MultipleChoiceField(required=False, choices=[])
    route = forms.CharField(required=False)
    chain = forms.CharField(required=False)
    aggregator = forms.ChoiceField(choices=Aggregator.choices, initial=Aggregator.MAJORITY, required=False)
    judge_model = forms.CharField(required=False)
    system_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), strip=False)
    prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}), strip=False)
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    max_tokens = forms.IntegerField(required=False, min_value=1, max_value=200_000)
    image = forms.FileField(required=False)
    tools = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}), strip=False)
    tool_choice = forms.CharField(required=False, max_length=100)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any name is accepted here; clean() says precisely what is wrong with it.
        names = self.data.getlist("models") if hasattr(self.data, "getlist") else self.data.get("models", [])
        self.fields["models"].choices = [(n, n) for n in names]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        errors: list[str] = []
        mode = data.get("mode") or RunMode.MODELS
        prompt = data.get("prompt") or ""
        if not prompt.strip():
            errors.append("Write a prompt first.")
        tokens = estimate_tokens((data.get("system_prompt") or "") + prompt)
        data["route_obj"] = None
        data["model_objs"] = []
        data["image_uri"] = image_data_uri(data.get("image"), errors)
        data["tool_list"], data["tool_choice_value"] = tools_from_text(
            data.get("tools") or "", data.get("tool_choice") or "", errors
        )
        if (data["image_uri"] or data["tool_list"]) and mode not in ATTACHMENT_MODES:
            errors.append(
                "Images and tools go to models, a route or a chain; a consensus compares text only."
            )
        names = list(dict.fromkeys(data.get("models") or []))
        if mode in (RunMode.MODELS, RunMode.CONSENSUS):
            limit = max_models()
            if not names:
                errors.append(
                    "Pick at least one model." if mode == RunMode.MODELS else "Pick the consensus members."
                )
            elif mode == RunMode.CONSENSUS and len(names) < 2:
                errors.append("A consensus needs at least two models.")
            elif len(names) > limit:
                errors.append(f"Pick at most {limit} models at once (you picked {len(names)}).")
            else:
                data["model_objs"] = _check_models(names, tokens, errors)
            if mode == RunMode.CONSENSUS and data.get("aggregator") == Aggregator.JUDGE:
                judge = data.get("judge_model") or ""
                if not judge:
                    errors.append("The judge aggregator needs a judge model.")
                else:
                    _check_models([judge], tokens, errors)
        elif mode == RunMode.ROUTE:
            task_type = data.get("route") or ""
            route = (
                TaskRoute.objects.select_related("model__provider")
                .prefetch_related("fallback_chain__steps__model__provider")
                .filter(task_type=task_type)
                .first()
            )
            if not task_type:
                errors.append("Pick a task route.")
            elif route is None:
                errors.append(f"Unknown task route {task_type!r}.")
            elif not route.enabled:
                errors.append(f"The route {task_type} is disabled.")
            elif route.model is not None and not _chain_can_answer(route.fallback_chain, tokens):
                # The engine falls back past a key-less or too-small model, so only refuse
                # when the route's fallback chain cannot answer either.
                _check_models([route.model.name], tokens, errors)
            data["route_obj"] = route
        elif mode == RunMode.CHAIN:
            name = data.get("chain") or ""
            chain = FallbackChain.objects.prefetch_related("steps__model__provider").filter(name=name).first()
            if not name:
                errors.append("Pick a fallback chain.")
            elif chain is None:
                errors.append(f"Unknown fallback chain {name!r}.")
            else:
                steps = list(chain.steps.all())
                if not steps:
                    errors.append(f"The chain {name} has no steps.")
                elif all(model_unusable_reason(s.model) for s in steps):
                    errors.append(
                        f"No model of the chain {name} can answer: "
                        + "; ".join(f"{s.model.name}: {model_unusable_reason(s.model)}" for s in steps)
                        + "."
                    )
                elif all(tokens > s.model.context_window for s in steps):
                    errors.append(
                        f"The prompt is about {tokens:,} tokens; no model of the chain {name} takes that many."
                    )
        for error in errors:
            self.add_error(None, error)
        return data


class ArenaForm(forms.Form):
    prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}), strip=False)
    system_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), strip=False)
    capability = forms.CharField(required=False)
    route = forms.CharField(required=False)
    model_a = forms.CharField(required=False)
    model_b = forms.CharField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        errors: list[str] = []
        prompt = data.get("prompt") or ""
        if not prompt.strip():
            errors.append("Write a prompt first.")
        data["route_obj"] = None
        task_type = data.get("route") or ""
        if task_type:
            route = TaskRoute.objects.filter(task_type=task_type, enabled=True).first()
            if route is None:
                errors.append(f"Unknown task route {task_type!r}.")
            data["route_obj"] = route
        tokens = estimate_tokens((data.get("system_prompt") or "") + prompt)
        chosen = [n for n in (data.get("model_a"), data.get("model_b")) if n]
        if len(chosen) == 2 and chosen[0] == chosen[1]:
            errors.append("Pick two different models (or leave them random).")
        elif chosen:
            _check_models(chosen, tokens, errors)
        data["tokens"] = tokens
        for error in errors:
            self.add_error(None, error)
        return data
