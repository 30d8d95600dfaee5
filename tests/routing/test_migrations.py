"""Data migrations: what they add to an install loaded before them.

Rows are made with the models as they were at that migration (the current ones may have
columns the old schema lacks), and every test ends back on the latest schema."""

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate_to(target: str):
    """Migrate routing to `target`; the models as they are at that migration."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("routing", target)])
    return executor.loader.project_state(("routing", target)).apps


@pytest.fixture
def migrations(transactional_db) -> Iterator[None]:
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def model_make(apps, name: str, capabilities: tuple[str, ...] = ()) -> None:
    Provider = apps.get_model("routing", "Provider")
    Capability = apps.get_model("routing", "Capability")
    ModelConfig = apps.get_model("routing", "ModelConfig")
    provider, _ = Provider.objects.get_or_create(name="sim", defaults={"kind": "simulated"})
    model = ModelConfig.objects.create(name=name, provider=provider, model_id=name)
    for slug in capabilities:
        model.capabilities.add(Capability.objects.get_or_create(slug=slug)[0])


def slugs(apps, name: str) -> set[str]:
    model = apps.get_model("routing", "ModelConfig").objects.get(name=name)
    return set(model.capabilities.values_list("slug", flat=True))


def test_tool_use_is_added_to_the_default_models_that_call_tools(migrations):
    before = migrate_to("0003_provider_kind_from_registry")
    model_make(before, "gpt-4o", ("vision",))
    model_make(before, "llama-3-8b")

    after = migrate_to("0004_tool_use_capability")

    assert after.get_model("routing", "Capability").objects.filter(slug="tool_use").exists()
    assert slugs(after, "gpt-4o") == {"vision", "tool_use"}
    assert slugs(after, "llama-3-8b") == set()


def test_an_install_without_the_default_models_is_left_alone(migrations):
    before = migrate_to("0003_provider_kind_from_registry")
    model_make(before, "my-own-model")

    after = migrate_to("0004_tool_use_capability")

    assert not after.get_model("routing", "Capability").objects.filter(slug="tool_use").exists()


def test_an_install_with_models_gets_the_embedding_capability(migrations):
    before = migrate_to("0004_tool_use_capability")
    model_make(before, "my-own-model")

    after = migrate_to("0005_model_embedding_dimensions")

    assert after.get_model("routing", "Capability").objects.filter(slug="embedding").exists()
    assert (
        after.get_model("routing", "ModelConfig").objects.get(name="my-own-model").embedding_dimensions
        is None
    )


def test_a_fresh_install_is_left_to_the_defaults_loader(migrations):
    migrate_to("0004_tool_use_capability")

    after = migrate_to("0005_model_embedding_dimensions")

    assert not after.get_model("routing", "Capability").objects.filter(slug="embedding").exists()
