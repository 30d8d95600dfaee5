"""Reads of routing configuration."""

from django.db.models import QuerySet

from routing.models import ModelConfig


def models_with_status() -> QuerySet[ModelConfig]:
    return ModelConfig.objects.select_related("provider").prefetch_related("capabilities").order_by("name")
