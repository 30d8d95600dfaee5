"""Versioned prompts, per-model variants, rollback, ordered chain steps, and their audit trail."""

import pytest
from django.core.exceptions import ValidationError

from routing.models import ChainStep, PromptVariant, PromptVersion, TaskRoute
from routing.selectors import prompt_diff, route_prompt_for, route_prompt_history
from routing.services import chain_set_steps, route_rollback_prompt, route_update_prompt
from tests.factories import FallbackChainFactory, ModelConfigFactory, TaskRouteFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor():
    return UserFactory(username="carol", is_staff=True)


def test_editing_a_prompt_creates_a_new_version_and_points_the_route_at_it(editor):
    route = TaskRouteFactory()
    v1 = route_update_prompt(route=route, system_prompt="Be brief.", user=editor)
    v2 = route_update_prompt(route=route, system_prompt="Be very brief.", user=editor, note="shorter")
    route.refresh_from_db()
    assert (v1.version, v2.version) == (1, 2)
    assert route.active_prompt == v2
    assert v2.note == "shorter" and v2.created_by == editor
    assert PromptVersion.objects.get(pk=v1.pk).system_prompt == "Be brief."


def test_saving_the_same_text_is_a_no_op_even_with_crlf_and_padding(editor):
    route = TaskRouteFactory()
    v1 = route_update_prompt(route=route, system_prompt="Line one.\nLine two.", user=editor)
    again = route_update_prompt(route=route, system_prompt="  Line one.\r\nLine two.\r\n", user=editor)
    assert again == v1
    assert PromptVersion.objects.filter(route=route).count() == 1


def test_an_empty_prompt_on_a_route_without_one_changes_nothing(editor):
    route = TaskRouteFactory()
    assert route_update_prompt(route=route, system_prompt="", user=editor) is None
    assert not PromptVersion.objects.exists()


def test_a_variant_has_its_own_versions_and_wins_for_its_model(editor):
    route = TaskRouteFactory()
    claude, other = ModelConfigFactory(name="claude"), ModelConfigFactory(name="other")
    base = route_update_prompt(route=route, system_prompt="Default.", user=editor)
    variant = route_update_prompt(route=route, system_prompt="For Claude.", model=claude, user=editor)
    assert variant.version == 1 and variant.model == claude
    route.refresh_from_db()
    assert route_prompt_for(route=route, model=claude) == variant
    assert route_prompt_for(route=route, model=other) == base
    assert route.active_prompt == base


def test_an_empty_variant_text_removes_the_variant(editor):
    route = TaskRouteFactory()
    claude = ModelConfigFactory(name="claude")
    route_update_prompt(route=route, system_prompt="Default.", user=editor)
    route_update_prompt(route=route, system_prompt="For Claude.", model=claude, user=editor)
    assert route_update_prompt(route=route, system_prompt=" ", model=claude, user=editor) is None
    assert not PromptVariant.objects.filter(route=route).exists()
    assert route_prompt_for(route=route, model=claude).system_prompt == "Default."
    # Its versions stay in the history.
    assert PromptVersion.objects.filter(route=route, model=claude).count() == 1


def test_rollback_makes_an_old_version_active_without_a_new_version(editor):
    route = TaskRouteFactory()
    v1 = route_update_prompt(route=route, system_prompt="One.", user=editor)
    route_update_prompt(route=route, system_prompt="Two.", user=editor)
    route_rollback_prompt(route=route, version=v1, user=editor)
    route.refresh_from_db()
    assert route.active_prompt == v1
    assert PromptVersion.objects.filter(route=route).count() == 2
    # The next edit continues the numbering.
    assert route_update_prompt(route=route, system_prompt="Three.", user=editor).version == 3


def test_rollback_is_audited_with_the_user_and_a_reason(editor):
    route = TaskRouteFactory()
    v1 = route_update_prompt(route=route, system_prompt="One.", user=editor)
    route_update_prompt(route=route, system_prompt="Two.", user=editor)
    route_rollback_prompt(route=route, version=v1, user=editor)
    latest = TaskRoute.history.filter(id=route.pk).order_by("-history_id").first()
    assert latest.history_user == editor
    assert latest.history_change_reason == "Rolled back prompt to v1"
    assert latest.active_prompt_id == v1.pk


def test_rollback_of_a_variant_version_reactivates_that_variant(editor):
    route = TaskRouteFactory()
    claude = ModelConfigFactory(name="claude")
    first = route_update_prompt(route=route, system_prompt="A.", model=claude, user=editor)
    route_update_prompt(route=route, system_prompt="", model=claude, user=editor)
    route_rollback_prompt(route=route, version=first, user=editor)
    assert PromptVariant.objects.get(route=route, model=claude).active_prompt == first


def test_rollback_refuses_a_version_of_another_route(editor):
    route, other = TaskRouteFactory(), TaskRouteFactory()
    foreign = route_update_prompt(route=other, system_prompt="Theirs.", user=editor)
    with pytest.raises(ValidationError):
        route_rollback_prompt(route=route, version=foreign, user=editor)


def test_prompt_edits_are_audited_on_the_route(editor):
    route = TaskRouteFactory()
    route_update_prompt(route=route, system_prompt="One.", user=editor, note="first cut")
    record = TaskRoute.history.filter(id=route.pk).order_by("-history_id").first()
    assert record.history_user == editor
    assert record.history_change_reason == "Prompt v1: first cut"


def test_the_history_lists_each_series_newest_first_with_diffs(editor):
    route = TaskRouteFactory()
    claude = ModelConfigFactory(name="claude")
    route_update_prompt(route=route, system_prompt="Keep.\nOld line.", user=editor)
    route_update_prompt(route=route, system_prompt="Keep.\nNew line.", user=editor)
    route_update_prompt(route=route, system_prompt="Claude.", model=claude, user=editor)
    route.refresh_from_db()
    default, variant = route_prompt_history(route=route)
    assert default.model is None and variant.model == claude
    assert [row.version.version for row in default.rows] == [2, 1]
    assert default.rows[0].active and not default.rows[1].active
    kinds = {(line.kind, line.text) for line in default.rows[0].diff}
    assert ("del", "Old") in kinds and ("add", "New") in kinds and ("same", " line.") in kinds
    assert default.rows[1].diff == []


def test_prompt_diff_marks_the_edited_words_not_the_whole_line():
    before = "You are a concise assistant. Summarise the text in three sentences and keep every number."
    after = "You are a brief assistant. Summarise the text in three sentences and keep every number."
    pieces = [(p.kind, p.text) for p in prompt_diff(before, after)]
    assert ("del", "concise") in pieces and ("add", "brief") in pieces
    assert [k for k, _ in pieces].count("add") == 1 and [k for k, _ in pieces].count("del") == 1


def test_prompt_diff_leaves_out_long_unchanged_text_between_changes():
    middle = " ".join(f"word{i}" for i in range(200))
    pieces = prompt_diff(f"Start {middle} end.", f"Begin {middle} finish.")
    assert ("gap", "…") in [(p.kind, p.text) for p in pieces]
    assert sum(len(p.text) for p in pieces if p.kind == "same") < len(middle) / 3


def test_prompt_diff_keeps_text_as_is_for_the_template_to_escape():
    lines = prompt_diff("a", "<b>")
    assert ("add", "<b>") in {(line.kind, line.text) for line in lines}


def test_chain_steps_can_be_reordered_without_colliding_positions(editor):
    a, b, c = ModelConfigFactory(name="a"), ModelConfigFactory(name="b"), ModelConfigFactory(name="c")
    chain = FallbackChainFactory(models=[a, b])
    assert chain_set_steps(chain=chain, steps=[(b, None), (a, 5.0), (c, None)], user=editor)
    steps = list(ChainStep.objects.filter(chain=chain).order_by("position"))
    assert [(s.position, s.model.name, s.timeout_s) for s in steps] == [
        (0, "b", None),
        (1, "a", 5.0),
        (2, "c", None),
    ]
    assert chain_set_steps(chain=chain, steps=[(c, None)], user=editor)
    assert [s.model.name for s in ChainStep.objects.filter(chain=chain)] == ["c"]


def test_setting_the_same_steps_changes_nothing(editor):
    a = ModelConfigFactory(name="a")
    chain = FallbackChainFactory(models=[a])
    before = ChainStep.history.count()
    assert not chain_set_steps(chain=chain, steps=[(a, None)], user=editor)
    assert ChainStep.history.count() == before


def test_step_changes_are_audited_with_the_user(editor):
    a, b = ModelConfigFactory(name="a"), ModelConfigFactory(name="b")
    chain = FallbackChainFactory(models=[a])
    chain_set_steps(chain=chain, steps=[(b, None)], user=editor)
    record = ChainStep.history.order_by("-history_id").first()
    assert record.history_user == editor
    assert record.model_id == b.pk
