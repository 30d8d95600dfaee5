"""Each playground view: success, wrong method, anonymous refused, htmx gets only the fragment;
and bad input gets a clear inline message with nothing sent."""

import re

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from metrics.models import CallRecord
from playground import services
from playground.models import ColumnStatus, PlaygroundColumn, PlaygroundRun, RunMode, Vote
from routing.models import PromptVersion
from tests.factories import FallbackChainFactory, TaskRouteFactory, UserFactory
from tests.playground.conftest import keyless_model, sim_model

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _ask(client, **data):
    payload = {"mode": "models", "prompt": "Say hi", **data}
    return client.post(reverse("playground:index"), payload, **HTMX)


# -- the page -------------------------------------------------------------------------


def test_the_page_lists_models_by_provider_with_badges(member_client):
    sim_model("sim-alpha", capabilities=["code"])
    keyless_model("gpt-keyless")
    response = member_client.get(reverse("playground:index"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "sim-alpha" in body and "simulated" in body and "code" in body
    assert "needs key: set PLAYGROUND_TEST_UNSET_KEY" in body
    assert 'value="gpt-keyless" disabled' in body
    assert "<html" in body


def test_the_page_refuses_anonymous_users(client):
    response = client.get(reverse("playground:index"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_page_rejects_other_methods(member_client):
    assert member_client.put(reverse("playground:index")).status_code == 405


def test_sending_to_two_models_returns_the_columns_fragment(member_client, member_user, two_models):
    response = _ask(member_client, models=["sim-alpha", "sim-beta"], temperature="0.3", max_tokens="50")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    run = PlaygroundRun.objects.get()
    assert (run.user, run.mode, run.prompt, run.temperature, run.max_tokens) == (
        member_user,
        "models",
        "Say hi",
        0.3,
        50,
    )
    assert body.count('class="pg-col"') == 2
    assert reverse("playground:column_stream", args=[run.pk, 0]) in body
    assert reverse("playground:column_stream", args=[run.pk, 1]) in body


def test_sending_without_htmx_redirects_to_the_permalink(member_client, two_models):
    response = member_client.post(
        reverse("playground:index"), {"mode": "models", "prompt": "hi", "models": ["sim-alpha"]}
    )
    run = PlaygroundRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("playground:run", args=[run.pk])


def test_a_route_run_keeps_the_route(member_client):
    route = TaskRouteFactory(task_type="summarise")
    response = _ask(member_client, mode="route", route="summarise")
    assert response.status_code == 200
    assert PlaygroundRun.objects.get().route == route


def test_a_route_whose_model_needs_a_key_runs_when_its_fallback_chain_can_answer(member_client):
    chain = FallbackChainFactory(name="spare", models=[sim_model("spare-1")])
    TaskRouteFactory(task_type="triage", model=keyless_model("gpt-keyless"), fallback_chain=chain)
    response = _ask(member_client, mode="route", route="triage")
    assert response.status_code == 200 and "cannot answer" not in response.content.decode()
    assert PlaygroundRun.objects.get().route.task_type == "triage"


def test_a_route_whose_model_needs_a_key_and_has_no_usable_fallback_is_refused(member_client):
    chain = FallbackChainFactory(name="also-keyless", models=[keyless_model("other-keyless")])
    TaskRouteFactory(task_type="triage", model=keyless_model("gpt-keyless"), fallback_chain=chain)
    _assert_refused(
        _ask(member_client, mode="route", route="triage"),
        "gpt-keyless cannot answer: needs key: set PLAYGROUND_TEST_UNSET_KEY",
    )


def test_a_chain_run_keeps_the_chain(member_client):
    FallbackChainFactory(name="main", models=[sim_model("c1"), sim_model("c2")])
    assert _ask(member_client, mode="chain", chain="main").status_code == 200
    assert PlaygroundRun.objects.get().chain_name == "main"


def test_a_consensus_run_shows_the_consensus_panel(member_client, two_models):
    response = _ask(
        member_client, mode="consensus", models=["sim-alpha", "sim-beta"], aggregator="similarity"
    )
    run = PlaygroundRun.objects.get()
    assert run.aggregator == "similarity"
    assert reverse("playground:consensus_stream", args=[run.pk]) in response.content.decode()


# -- bad input: a clear inline message, nothing saved, nothing sent -------------------------


def _assert_refused(response, message):
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#pg-errors"
    assert message in response.content.decode()
    assert not PlaygroundRun.objects.exists()
    assert not CallRecord.objects.exists()


def test_an_empty_prompt_is_refused(member_client, two_models):
    _assert_refused(_ask(member_client, prompt="   ", models=["sim-alpha"]), "Write a prompt first.")


def test_nothing_selected_is_refused(member_client):
    _assert_refused(_ask(member_client), "Pick at least one model.")


def test_a_key_less_model_is_refused(member_client):
    keyless_model("gpt-keyless")
    _assert_refused(_ask(member_client, models=["gpt-keyless"]), "needs key: set PLAYGROUND_TEST_UNSET_KEY")


def test_an_unknown_model_is_refused(member_client):
    _assert_refused(_ask(member_client, models=["nope"]), "Unknown model &#x27;nope&#x27;")


def test_a_prompt_beyond_the_context_window_is_refused(member_client):
    sim_model("tiny", context_window=10)
    _assert_refused(_ask(member_client, prompt="word " * 100, models=["tiny"]), "tiny takes at most 10")


@override_settings(ORCHESTRATOR={**settings.ORCHESTRATOR, "PLAYGROUND_MAX_MODELS": 2})
def test_more_models_than_the_maximum_are_refused(member_client):
    for name in ("m1", "m2", "m3"):
        sim_model(name)
    _assert_refused(
        _ask(member_client, models=["m1", "m2", "m3"]), "Pick at most 2 models at once (you picked 3)."
    )


def test_a_consensus_of_one_is_refused(member_client, two_models):
    _assert_refused(_ask(member_client, mode="consensus", models=["sim-alpha"]), "at least two models")


def test_a_judge_consensus_without_a_judge_is_refused(member_client, two_models):
    _assert_refused(
        _ask(member_client, mode="consensus", models=["sim-alpha", "sim-beta"], aggregator="judge"),
        "needs a judge model",
    )


def test_a_route_mode_without_a_route_is_refused(member_client):
    _assert_refused(_ask(member_client, mode="route"), "Pick a task route.")


def test_a_prompt_of_several_megabytes_gets_the_context_window_message(member_client, two_models):
    response = _ask(member_client, models=["sim-alpha"], prompt="word " * 700_000)
    _assert_refused(response, "The prompt is about 875,000 tokens")


def test_an_out_of_range_temperature_is_refused(member_client, two_models):
    _assert_refused(_ask(member_client, models=["sim-alpha"], temperature="9"), "Temperature")


def test_bad_input_without_htmx_rerenders_the_page_with_the_message(member_client):
    response = member_client.post(reverse("playground:index"), {"mode": "models", "prompt": "hi"})
    assert response.status_code == 200
    assert "Pick at least one model." in response.content.decode() and "<html" in response.content.decode()
    assert 'name="prompt"' in response.content.decode()
    assert ">hi</textarea>" in response.content.decode()  # nothing typed is lost


# -- route prompt prefill ------------------------------------------------------------------


def test_choosing_a_route_prefills_its_active_system_prompt(member_client):
    route = TaskRouteFactory(task_type="review")
    version = PromptVersion.objects.create(
        route=route, version=3, system_prompt="You review <code> carefully."
    )
    route.active_prompt = version
    route.save()
    response = member_client.get(reverse("playground:route_prompt"), {"route": "review"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "You review &lt;code&gt; carefully." in body and "prompt v3" in body


def test_the_route_prompt_endpoint_rejects_post_and_anonymous(member_client, client):
    assert member_client.post(reverse("playground:route_prompt")).status_code == 405
    assert client.get(reverse("playground:route_prompt"), **HTMX).status_code == 302


def test_the_route_prompt_without_htmx_goes_back_to_the_page(member_client):
    response = member_client.get(reverse("playground:route_prompt"), {"route": "x"})
    assert response.status_code == 302


# -- permalink, history --------------------------------------------------------------------


def _finished_run(user, text="<img src=x onerror=alert(1)> **bold**"):
    sim_model("sim-alpha")
    run = services.run_create(user=user, mode=RunMode.MODELS, prompt="What?", models=["sim-alpha"])
    PlaygroundColumn.objects.filter(run=run).update(
        status=ColumnStatus.OK, text=text, answered_by="sim-alpha", latency_ms=1234, cost_usd="0.00012"
    )
    return run


def test_a_teammate_can_open_the_permalink_read_only(member_user):
    run = _finished_run(member_user)
    teammate = Client()
    teammate.force_login(UserFactory(username="carol"))
    response = teammate.get(reverse("playground:run", args=[run.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "&lt;img src=x onerror=alert(1)&gt;" in body and "<img src=x" not in body
    assert "<strong>bold</strong>" in body  # the sanitised Markdown view
    assert "data-stream-url" not in body and "Re-run" not in body and 'data-action="stop"' not in body


def test_the_permalink_refuses_anonymous_and_post(member_client, member_user, client):
    run = _finished_run(member_user)
    url = reverse("playground:run", args=[run.pk])
    assert client.get(url).status_code == 302
    assert member_client.post(url).status_code == 405
    assert member_client.get(reverse("playground:run", args=[run.pk + 99])).status_code == 404


def test_the_permalink_gives_htmx_only_the_run_fragment(member_client, member_user):
    run = _finished_run(member_user)
    body = member_client.get(reverse("playground:run", args=[run.pk]), **HTMX).content.decode()
    assert "<html" not in body and 'class="pg-run"' in body


def test_the_history_lists_my_runs_with_a_fixed_number_of_queries(
    member_client, member_user, django_assert_max_num_queries
):
    for i in range(5):
        run = _finished_run(member_user)
        PlaygroundRun.objects.filter(pk=run.pk).update(prompt=f"question {i}")
    with django_assert_max_num_queries(6):
        response = member_client.get(reverse("playground:history"))
    body = response.content.decode()
    assert response.status_code == 200 and body.count("question ") == 5


def test_the_history_filters_and_answers_htmx_with_rows(member_client, member_user):
    run = _finished_run(member_user)
    PlaygroundRun.objects.filter(pk=run.pk).update(prompt="about llamas")
    _finished_run(UserFactory(username="dave"))
    body = member_client.get(reverse("playground:history"), {"q": "llamas"}, **HTMX).content.decode()
    assert "<html" not in body and "about llamas" in body
    everyone = member_client.get(reverse("playground:history"), {"who": "all"}).content.decode()
    assert "dave" in everyone


def test_the_history_refuses_anonymous_and_post(member_client, client):
    assert client.get(reverse("playground:history")).status_code == 302
    assert member_client.post(reverse("playground:history")).status_code == 405


# -- stop and re-run ---------------------------------------------------------------------------


def test_stop_cancels_the_unfinished_columns(member_client, member_user, two_models):
    run = services.run_create(
        user=member_user, mode=RunMode.MODELS, prompt="hi", models=["sim-alpha", "sim-beta"]
    )
    response = member_client.post(reverse("playground:stop", args=[run.pk]), **HTMX)
    assert response.status_code == 204
    assert set(run.columns.values_list("status", flat=True)) == {"cancelled"}


def test_stop_is_only_for_the_owner_and_only_by_post(member_client, two_models, client):
    other = services.run_create(user=UserFactory(), mode=RunMode.MODELS, prompt="hi", models=["sim-alpha"])
    url = reverse("playground:stop", args=[other.pk])
    assert member_client.post(url).status_code == 403
    assert member_client.get(url).status_code == 405
    assert client.post(url).status_code == 302
    assert other.columns.get().status == "pending"


def test_rerun_returns_a_fresh_streaming_column(member_client, member_user):
    run = _finished_run(member_user)
    response = member_client.post(reverse("playground:rerun", args=[run.pk, 0]), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert reverse("playground:column_stream", args=[run.pk, 0]) in body
    assert run.columns.get().status == "pending"


def test_rerun_refuses_other_methods_strangers_and_anonymous(member_client, client):
    run = _finished_run(UserFactory(username="erin"))
    url = reverse("playground:rerun", args=[run.pk, 0])
    assert member_client.get(url).status_code == 405
    assert member_client.post(url).status_code == 403
    assert client.post(url).status_code == 302


# -- arena and leaderboard ------------------------------------------------------------------


def test_the_arena_page_renders(member_client):
    response = member_client.get(reverse("playground:arena"))
    assert response.status_code == 200 and "Blind arena" in response.content.decode()


def test_an_arena_round_hides_the_model_names(member_client, two_models):
    response = member_client.post(reverse("playground:arena"), {"prompt": "Write a haiku"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "Model A" in body and "Model B" in body
    assert "sim-alpha" not in body and "sim-beta" not in body
    run = PlaygroundRun.objects.get()
    assert run.mode == "arena" and set(run.columns.values_list("target_model", flat=True)) == {
        "sim-alpha",
        "sim-beta",
    }


def test_an_arena_round_needs_two_models(member_client):
    sim_model("only-one")
    response = member_client.post(reverse("playground:arena"), {"prompt": "hi"}, **HTMX)
    assert "needs two models" in response.content.decode() and not PlaygroundRun.objects.exists()


def test_an_arena_round_needs_a_prompt(member_client, two_models):
    response = member_client.post(reverse("playground:arena"), {"prompt": ""}, **HTMX)
    assert "Write a prompt first." in response.content.decode() and not PlaygroundRun.objects.exists()


def test_the_arena_refuses_anonymous_and_put(member_client, client):
    assert client.get(reverse("playground:arena")).status_code == 302
    assert member_client.put(reverse("playground:arena")).status_code == 405


def _arena_run(user):
    sim_model("sim-alpha")
    sim_model("sim-beta")
    run = services.run_create(
        user=user, mode=RunMode.ARENA, prompt="p", models=["sim-alpha", "sim-beta"], capability="code"
    )
    PlaygroundColumn.objects.filter(run=run).update(status=ColumnStatus.OK, text="answer")
    return run


def test_voting_reveals_the_names_and_stores_the_vote(member_client, member_user):
    run = _arena_run(member_user)
    response = member_client.post(reverse("playground:vote", args=[run.pk]), {"winner": "b"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "sim-alpha" in body and "sim-beta" in body and "B is better" in body
    vote = Vote.objects.get()
    assert (vote.model_a, vote.model_b, vote.winner, vote.capability, vote.user) == (
        "sim-alpha", "sim-beta", "b", "code", member_user,
    )  # fmt: skip


def test_a_round_takes_one_vote_only(member_client, member_user):
    run = _arena_run(member_user)
    member_client.post(reverse("playground:vote", args=[run.pk]), {"winner": "a"}, **HTMX)
    response = member_client.post(reverse("playground:vote", args=[run.pk]), {"winner": "b"}, **HTMX)
    assert "already voted" in response.content.decode()
    assert Vote.objects.get().winner == "a"


def test_a_bad_vote_is_refused(member_client, member_user):
    run = _arena_run(member_user)
    response = member_client.post(reverse("playground:vote", args=[run.pk]), {"winner": "c"}, **HTMX)
    assert response.status_code == 400 and "Pick A, B, tie or both bad." in response.content.decode()
    assert not Vote.objects.exists()


def test_a_round_where_an_answer_failed_cannot_be_rated(member_client, member_user):
    run = _arena_run(member_user)
    PlaygroundColumn.objects.filter(run=run, position=0).update(status=ColumnStatus.ERROR, text="")
    page = member_client.get(reverse("playground:run", args=[run.pk])).content.decode()
    assert 'value="a" class="pg-vote-a" disabled' in page
    response = member_client.post(reverse("playground:vote", args=[run.pk]), {"winner": "b"}, **HTMX)
    assert response.status_code == 400 and "cannot be rated" in response.content.decode()
    assert "sim-alpha" not in response.content.decode()  # still blind
    assert not Vote.objects.exists()


def test_voting_refuses_get_strangers_and_anonymous(member_client, client):
    run = _arena_run(UserFactory(username="frank"))
    url = reverse("playground:vote", args=[run.pk])
    assert member_client.get(url).status_code == 405
    assert member_client.post(url, {"winner": "a"}).status_code == 403
    assert client.post(url, {"winner": "a"}).status_code == 302
    assert not Vote.objects.exists()


def test_the_leaderboard_ranks_models_with_a_fixed_number_of_queries(
    member_client, django_assert_max_num_queries
):
    for _ in range(6):
        services.vote_create(user=None, prompt="p", model_a="m1", model_b="m2", winner="a", capability="code")
        services.vote_create(
            user=None, prompt="p", model_a="m3", model_b="m1", winner="b", task_type="review"
        )
    with django_assert_max_num_queries(6):
        response = member_client.get(reverse("playground:leaderboard"))
    body = response.content.decode()
    assert response.status_code == 200
    assert body.index('data-model="m1"') < body.index('data-model="m2"')
    assert "Win matrix" in body and "code (6)" in body and "review (6)" in body


def test_the_leaderboard_shows_votes_voters_and_how_far_from_routing_a_model_is(member_client, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RATING_MIN_VOTES": 20}
    voters = [UserFactory(), UserFactory()]
    for index, prompt in enumerate(["p1", "p2", "p3"]):
        services.vote_create(user=voters[index % 2], prompt=prompt, model_a="m1", model_b="m2", winner="a")
    body = member_client.get(reverse("playground:leaderboard")).content.decode()
    row = body[body.index('data-model="m1"') : body.index("</tr>", body.index('data-model="m1"'))]
    cells = re.findall(r'<td class="num">(.*?)</td>', row, re.S)
    votes, voters_shown = cells[2], cells[3]
    assert re.sub(r"<[^>]+>", "", votes).split() == ["3", "of", "20"]
    assert voters_shown == "2"
    assert "·" not in row


def test_the_leaderboard_filters_by_capability_for_htmx(member_client):
    services.vote_create(user=None, prompt="p", model_a="m1", model_b="m2", winner="a", capability="code")
    services.vote_create(user=None, prompt="p", model_a="m3", model_b="m4", winner="a", capability="writing")
    body = member_client.get(
        reverse("playground:leaderboard"), {"capability": "code"}, **HTMX
    ).content.decode()
    assert "<html" not in body and "m1" in body and "m3" not in body


def test_the_leaderboard_refuses_anonymous_and_post(member_client, client):
    assert client.get(reverse("playground:leaderboard")).status_code == 302
    assert member_client.post(reverse("playground:leaderboard")).status_code == 405


def test_the_permalink_lists_the_call_records_with_a_fixed_number_of_queries(
    member_client, member_user, django_assert_max_num_queries
):
    from tests.factories import CallRecordFactory

    run = _finished_run(member_user)
    trace = run.columns.get().trace_id
    for attempt in range(1, 6):
        CallRecordFactory(trace_id=trace, model_name="sim-alpha", attempt=attempt)
    with django_assert_max_num_queries(8):
        response = member_client.get(reverse("playground:run", args=[run.pk]))
    assert response.content.decode().count("<tr><td><code>") == 5


def test_the_history_names_arena_models_only_after_the_vote(member_client, member_user):
    run = _arena_run(member_user)
    body = member_client.get(reverse("playground:history")).content.decode()
    assert "not voted yet" in body and "sim-alpha" not in body
    services.vote_create(
        user=member_user, prompt="p", model_a="sim-alpha", model_b="sim-beta", winner="tie", run=run
    )
    body = member_client.get(reverse("playground:history")).content.decode()
    assert "sim-alpha" in body and "sim-beta" in body and "Tie" in body


def test_the_page_lists_many_models_with_a_fixed_number_of_queries(
    member_client, django_assert_max_num_queries
):
    for i in range(12):
        sim_model(f"m{i}", capabilities=["code", "chat"])
    keyless_model("gpt-keyless")
    FallbackChainFactory(name="main", models=[sim_model("c1"), sim_model("c2")])
    TaskRouteFactory(task_type="review")
    with django_assert_max_num_queries(8):
        response = member_client.get(reverse("playground:index"))
    assert response.content.decode().count('name="models"') == 15


def test_a_vote_before_both_answers_finish_is_refused(member_client, member_user):
    run = _arena_run(member_user)
    PlaygroundColumn.objects.filter(run=run, position=1).update(status=ColumnStatus.STREAMING)
    response = member_client.post(reverse("playground:vote", args=[run.pk]), {"winner": "a"}, **HTMX)
    assert (
        response.status_code == 400 and "Wait until both answers have finished" in response.content.decode()
    )
    assert not Vote.objects.exists()


def test_a_finished_run_page_offers_no_stop_but_a_running_one_does(member_client, member_user, two_models):
    run = services.run_create(
        user=member_user, mode=RunMode.MODELS, prompt="p", models=["sim-alpha", "sim-beta"]
    )
    url = reverse("playground:run", args=[run.pk])
    assert 'data-action="stop"' in member_client.get(url).content.decode()
    PlaygroundColumn.objects.filter(run=run, position=0).update(status=ColumnStatus.OK)
    assert 'data-action="stop"' in member_client.get(url).content.decode()
    PlaygroundColumn.objects.filter(run=run).update(status=ColumnStatus.CANCELLED)
    assert 'data-action="stop"' not in member_client.get(url).content.decode()


def test_an_arena_page_before_the_vote_shows_no_figures_or_simulated_badge(member_client, member_user):
    run = _arena_run(member_user)
    PlaygroundColumn.objects.filter(run=run).update(
        latency_ms=812.0, ttft_ms=90.0, cost_usd="0.0042", simulated=True
    )
    body = member_client.get(reverse("playground:run", args=[run.pk])).content.decode()
    assert "812 ms" not in body and "90 ms" not in body and "$0.0042" not in body
    assert 'class="badge sim"' not in body and 'data-field="latency"' not in body


def test_the_route_prompt_box_marks_the_prompt_as_the_routes(member_client):
    route = TaskRouteFactory(task_type="translation", model=sim_model("sim-alpha"))
    route.active_prompt = PromptVersion.objects.create(route=route, version=1, system_prompt="Into French.")
    route.save()
    response = member_client.get(reverse("playground:route_prompt"), {"route": "translation"}, **HTMX)
    body = response.content.decode()
    assert 'data-route-prompt="Into French."' in body and "<html" not in body
