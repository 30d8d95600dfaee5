"""Data migrations: what they add to an install loaded before them."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from routing.models import Capability, ModelConfig
from tests.factories import ModelConfigFactory


def migrate_to(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("routing", target)])


def test_tool_use_is_added_to_the_default_models_that_call_tools(transactional_db):
    migrate_to("0003_provider_kind_from_registry")
    ModelConfigFactory(name="gpt-4o", capabilities=["vision"])
    ModelConfigFactory(name="llama-3-8b")

    migrate_to("0004_tool_use_capability")

    assert Capability.objects.filter(slug="tool_use").exists()
    assert set(ModelConfig.objects.get(name="gpt-4o").capabilities.values_list("slug", flat=True)) == {
        "vision",
        "tool_use",
    }
    assert not ModelConfig.objects.get(name="llama-3-8b").capabilities.exists()


def test_an_install_without_the_default_models_is_left_alone(transactional_db):
    migrate_to("0003_provider_kind_from_registry")
    ModelConfigFactory(name="my-own-model")

    migrate_to("0004_tool_use_capability")

    assert not Capability.objects.filter(slug="tool_use").exists()
