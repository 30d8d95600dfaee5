"""The `tool_use` capability (a request with tools needs it), on the default models that have it.

New installs get it from config/defaults.yaml; this adds it to installs loaded before it
existed: the capability, on the default models of those names that can call tools. (An
install with none of them, or a fresh one, is left alone: the defaults loader makes it.)"""

from django.db import migrations

DESCRIPTION = "Call the functions (tools) a request offers."
# The defaults (config/defaults.yaml) that call tools; llama3 on Ollama does not.
DEFAULT_TOOL_MODELS = (
    "claude-3.5-sonnet",
    "gemini-1.5-pro",
    "gpt-4o",
    "gpt-4o-mini",
    "sim-coder",
    "sim-fast",
    "sim-smart",
)


def tool_use_add(apps, schema_editor):
    Capability = apps.get_model("routing", "Capability")
    ModelConfig = apps.get_model("routing", "ModelConfig")
    models = list(ModelConfig.objects.filter(name__in=DEFAULT_TOOL_MODELS))
    if not models:
        return
    capability, _ = Capability.objects.get_or_create(slug="tool_use", defaults={"description": DESCRIPTION})
    for model in models:
        model.capabilities.add(capability)


def tool_use_remove(apps, schema_editor):
    pass  # kept: models may have been given it since


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0003_provider_kind_from_registry"),
    ]

    operations = [migrations.RunPython(tool_use_add, tool_use_remove, elidable=True)]
