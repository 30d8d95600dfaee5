"""Invalidate the engine's in-process config cache whenever routing config is saved."""

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from routing.engine.config import config_invalidate
from routing.models import (
    Capability,
    ChainStep,
    FallbackChain,
    ModelConfig,
    PromptVariant,
    PromptVersion,
    Provider,
    TaskRoute,
)

WATCHED = (
    Provider,
    Capability,
    ModelConfig,
    FallbackChain,
    ChainStep,
    TaskRoute,
    PromptVersion,
    PromptVariant,
)


def _changed(**_: object) -> None:
    # Now (this process sees its own uncommitted change) and after commit (other processes
    # must not reload before the change is visible to them).
    config_invalidate()
    transaction.on_commit(config_invalidate)


for _model in WATCHED:
    post_save.connect(_changed, sender=_model, dispatch_uid=f"routing-config-save-{_model.__name__}")
    post_delete.connect(_changed, sender=_model, dispatch_uid=f"routing-config-delete-{_model.__name__}")


@receiver(m2m_changed, sender=ModelConfig.capabilities.through, dispatch_uid="routing-config-m2m-model")
@receiver(m2m_changed, sender=TaskRoute.capabilities.through, dispatch_uid="routing-config-m2m-route")
def _m2m_changed(action: str, **_: object) -> None:
    if action.startswith("post_"):
        _changed()
