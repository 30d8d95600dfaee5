import random

import pytest

from playground import selectors, services
from playground.models import ColumnStatus, PlaygroundColumn, RunMode, Vote
from tests.factories import TaskRouteFactory, UserFactory
from tests.playground.conftest import keyless_model, sim_model

pytestmark = pytest.mark.django_db


def test_vote_create_stores_the_vote_with_its_context():
    user = UserFactory()
    vote = services.vote_create(
        user=user,
        prompt="Which is better?",
        model_a="m1",
        model_b="m2",
        winner="b",
        capability="code",
        task_type="review",
    )
    stored = Vote.objects.get(pk=vote.pk)
    assert (stored.user, stored.model_a, stored.model_b, stored.winner) == (user, "m1", "m2", "b")
    assert (stored.capability, stored.task_type, stored.source, stored.prompt) == (
        "code",
        "review",
        "arena",
        "Which is better?",
    )


def test_vote_create_accepts_a_source_from_compare_runs():
    vote = services.vote_create(
        user=None, prompt="p", model_a="m1", model_b="m2", winner="tie", source="compare"
    )
    assert vote.source == "compare" and vote.user is None


@pytest.mark.parametrize("winner", ["", "A", "draw", "c"])
def test_vote_create_rejects_an_unknown_winner(winner):
    with pytest.raises(services.PlaygroundError, match="Unknown vote"):
        services.vote_create(user=None, prompt="p", model_a="m1", model_b="m2", winner=winner)
    assert not Vote.objects.exists()


def test_vote_create_rejects_a_model_against_itself():
    with pytest.raises(services.PlaygroundError):
        services.vote_create(user=None, prompt="p", model_a="m1", model_b="m1", winner="a")


def test_a_vote_refreshes_the_cached_leaderboard():
    services.vote_create(user=None, prompt="p", model_a="m1", model_b="m2", winner="a")
    assert selectors.leaderboard().models == ["m1", "m2"]
    for _ in range(3):
        services.vote_create(user=None, prompt="p", model_a="m1", model_b="m2", winner="b")
    assert selectors.leaderboard().models == ["m2", "m1"]


def test_run_create_makes_one_column_per_model_with_its_own_trace(two_models):
    user = UserFactory()
    run = services.run_create(user=user, mode=RunMode.MODELS, prompt="hi", models=["sim-alpha", "sim-beta"])
    columns = list(run.columns.order_by("position"))
    assert [c.target_model for c in columns] == ["sim-alpha", "sim-beta"]
    assert all(c.status == ColumnStatus.PENDING for c in columns)
    assert len({c.trace_id for c in columns}) == 2


def test_run_create_makes_a_single_column_for_a_route():
    route = TaskRouteFactory(task_type="summarise")
    run = services.run_create(user=None, mode=RunMode.ROUTE, prompt="hi", route=route)
    assert run.task_type == "summarise"
    assert list(run.columns.values_list("target_model", flat=True)) == [""]


def test_consensus_members_share_the_run_trace(two_models):
    run = services.run_create(
        user=None,
        mode=RunMode.CONSENSUS,
        prompt="hi",
        models=["sim-alpha", "sim-beta"],
        aggregator="majority",
    )
    assert set(run.columns.values_list("trace_id", flat=True)) == {run.trace_id}
    assert run.consensus_status == ColumnStatus.PENDING


def test_run_stop_cancels_only_unfinished_columns(two_models):
    run = services.run_create(user=None, mode=RunMode.MODELS, prompt="hi", models=["sim-alpha", "sim-beta"])
    PlaygroundColumn.objects.filter(run=run, position=0).update(status=ColumnStatus.OK, text="done")
    assert services.run_stop(run=run) == 1
    assert list(run.columns.order_by("position").values_list("status", flat=True)) == ["ok", "cancelled"]


def test_column_reset_clears_the_answer_and_gives_a_new_trace(two_models):
    run = services.run_create(user=None, mode=RunMode.MODELS, prompt="hi", models=["sim-alpha"])
    column = run.columns.get()
    old_trace = column.trace_id
    PlaygroundColumn.objects.filter(pk=column.pk).update(status=ColumnStatus.ERROR, text="x", error="boom")
    column.refresh_from_db()
    services.column_reset(column=column)
    column.refresh_from_db()
    assert (column.status, column.text, column.error) == ("pending", "", "")
    assert column.trace_id != old_trace


def test_arena_picks_two_different_usable_models():
    sim_model("a1")
    sim_model("a2")
    keyless_model("k1")
    for seed in range(10):
        a, b = services.arena_pick_models(rng=random.Random(seed))
        assert a != b and {a, b} <= {"a1", "a2"}


def test_arena_picks_within_the_capability():
    sim_model("c1", capabilities=["code"])
    sim_model("c2", capabilities=["code"])
    sim_model("other")
    for seed in range(10):
        assert set(services.arena_pick_models(capability="code", rng=random.Random(seed))) == {"c1", "c2"}


def test_arena_says_why_it_cannot_pick_two_models():
    sim_model("lonely", capabilities=["vision"])
    with pytest.raises(services.PlaygroundError, match="capability vision; only 1 can"):
        services.arena_pick_models(capability="vision")


def test_arena_keeps_the_chosen_models_in_order():
    sim_model("a1")
    sim_model("a2")
    sim_model("a3")
    assert services.arena_pick_models(model_a="a3", model_b="a1") == ("a3", "a1")


def test_a_user_voting_again_on_the_same_pair_replaces_the_vote():
    user = UserFactory()
    for winner in ("a", "a", "b"):
        services.vote_create(user=user, prompt="p", model_a="m1", model_b="m2", winner=winner)
    services.vote_create(user=user, prompt="p", model_a="m2", model_b="m1", winner="tie")  # either order
    vote = Vote.objects.get()
    assert (vote.model_a, vote.model_b, vote.winner) == ("m2", "m1", "tie")


def test_a_named_pair_is_one_vote_per_user_however_the_question_is_worded():
    user = UserFactory()
    services.vote_create(user=user, prompt="p", model_a="m1", model_b="m2", winner="a", pair="cells:1:2")
    services.vote_create(user=user, prompt="p ", model_a="m1", model_b="m2", winner="b", pair="cells:1:2")
    assert list(Vote.objects.values_list("winner", "prompt")) == [("b", "p ")]


def test_different_voters_questions_and_anonymous_votes_each_count():
    first, second = UserFactory(), UserFactory()
    services.vote_create(user=first, prompt="p", model_a="m1", model_b="m2", winner="a")
    services.vote_create(user=second, prompt="p", model_a="m1", model_b="m2", winner="a")
    services.vote_create(user=first, prompt="another", model_a="m1", model_b="m2", winner="a")
    services.vote_create(user=first, prompt="p", model_a="m1", model_b="m3", winner="a")
    for _ in range(2):  # no user to hold to one vote (scripts, tests)
        services.vote_create(user=None, prompt="p", model_a="m1", model_b="m2", winner="a")
    assert Vote.objects.count() == 6
