"""Data migrations of the playground: what they change in rows stored by earlier versions."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from playground import services
from playground.models import Vote
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_duplicate_votes_keep_each_users_latest_per_pair():
    stuffer, other = UserFactory(), UserFactory()
    now = timezone.now()

    def old_vote(user, winner, *, minutes_ago, prompt="Which is better?", model_b="m2"):
        # What the previous version stored: no pair, so nothing stopped a repeated post.
        vote = Vote.objects.create(
            user=user, prompt=prompt, model_a="m1", model_b=model_b, winner=winner, source="compare", pair=""
        )
        Vote.objects.filter(pk=vote.pk).update(created_at=now - timedelta(minutes=minutes_ago))
        return vote

    for minute in range(30, 1, -1):
        old_vote(stuffer, "b", minutes_ago=minute)
    latest = old_vote(stuffer, "a", minutes_ago=1)
    elsewhere = old_vote(stuffer, "b", minutes_ago=5, model_b="m3")
    other_user = old_vote(other, "b", minutes_ago=3)
    anonymous = [old_vote(None, "b", minutes_ago=2) for _ in range(2)]

    module = importlib.import_module("playground.migrations.0002_vote_one_per_user_pair")
    module.votes_one_per_user_pair(apps, None)

    kept = set(Vote.objects.values_list("pk", flat=True))
    assert kept == {latest.pk, elsewhere.pk, other_user.pk, *(v.pk for v in anonymous)}
    assert Vote.objects.get(pk=latest.pk).winner == "a"
    assert not Vote.objects.filter(pair="").exists()
    assert Vote.objects.get(pk=latest.pk).pair == Vote.objects.get(pk=other_user.pk).pair
    # The migration keyed them as the service does: voting again replaces the kept vote.
    services.vote_create(
        user=stuffer, prompt="Which is better?", model_a="m2", model_b="m1", winner="tie", source="compare"
    )
    assert Vote.objects.filter(user=stuffer).count() == 2
    assert Vote.objects.get(pk=latest.pk).winner == "tie"
