"""Consensus: members run concurrently; majority, judge, similarity and fastest aggregators."""

import threading

import pytest
from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from routing.engine.consensus import judge_parse, normalize
from routing.errors import AllAttemptsFailed, InvalidRequest
from routing.orchestrator import MemberOutcome, Result
from tests.fake_provider import Reply

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def members(fake_provider, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0}
    for name, kind in (("m1", "openai"), ("m2", "anthropic"), ("m3", "openai")):
        fake_provider.model(name, kind=kind)
    return ["m1", "m2", "m3"]


def test_majority_wins_after_folding_case_spaces_and_punctuation(fake_provider, members):
    fake_provider.script("m1", Reply.ok("Lyon"))
    fake_provider.script("m2", Reply.ok("Paris."))
    fake_provider.script("m3", Reply.ok("  paris "))

    result = orchestrator.consensus(QUESTION, models=members, aggregator="majority")

    assert result.model == "m2"
    assert result.text == "Paris."
    assert result.votes == {"Lyon": 1, "Paris.": 2}
    assert "2 of 3" in result.explanation
    assert [m.result.text for m in result.members] == ["Lyon", "Paris.", "  paris "]


def test_a_majority_tie_goes_to_the_earliest_listed_model(fake_provider, members):
    fake_provider.script("m1", Reply.ok("Lyon"))
    fake_provider.script("m2", Reply.ok("Paris"))
    fake_provider.script("m3", Reply.ok("Nice"))

    result = orchestrator.consensus(QUESTION, models=["m3", "m1", "m2"], aggregator="majority")

    assert result.model == "m3"
    assert "earliest-listed" in result.explanation


def test_a_failed_member_leaves_its_error_and_does_not_sink_the_vote(fake_provider, members):
    fake_provider.script("m1", Reply.unauthorized())
    fake_provider.script("m2", Reply.ok("Paris"))
    fake_provider.script("m3", Reply.ok("Paris"))

    result = orchestrator.consensus(QUESTION, models=members)

    assert result.text == "Paris"
    assert result.members[0].status == "error"
    assert "401" in result.members[0].error
    assert "1 member(s) failed" in result.explanation


def test_every_member_failing_is_all_attempts_failed(fake_provider, members):
    for name in members:
        fake_provider.script(name, Reply.unauthorized())

    with pytest.raises(AllAttemptsFailed) as caught:
        orchestrator.consensus(QUESTION, models=members)

    assert len(caught.value.attempts) == 3


def test_members_run_concurrently(fake_provider, members):
    for name in members:
        fake_provider.script(name, Reply.slow(latency_s=0.5, text="Paris"))
    seen = {}

    def watch():
        # Sequential members could never have all three requests in flight with none answered.
        seen["all_in_flight"] = fake_provider.wait_for(
            lambda history: len(history) == 3 and not any(r.completed for r in history), timeout=10
        )

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = orchestrator.consensus(QUESTION, models=members)
    watcher.join(10)

    assert seen["all_in_flight"]
    assert result.text == "Paris"


def test_the_judge_picks_an_answer_says_why_and_is_recorded(fake_provider, members):
    fake_provider.model("judge")
    fake_provider.script("m1", Reply.ok("Lyon"))
    fake_provider.script("m2", Reply.ok("Lyon"))
    fake_provider.script("m3", Reply.ok("Paris is the capital of France."))
    fake_provider.script(
        "judge", Reply.ok('```json\n{"best": 3, "reason": "Only answer 3 is correct."}\n```')
    )

    result = orchestrator.consensus(QUESTION, models=members, aggregator="judge", judge_model="judge")

    assert result.model == "m3"
    assert "Only answer 3 is correct." in result.explanation
    assert result.judge is not None and result.judge.model == "judge"
    judge_prompt = fake_provider.requests_for("judge")[0].body["messages"][-1]["content"]
    assert "Answer 3:\nParis is the capital of France." in judge_prompt
    record = CallRecord.objects.get(model_name="judge")
    assert record.role == "judge"
    assert record.trace_id == result.trace_id
    assert CallRecord.objects.filter(trace_id=result.trace_id, role="consensus").count() == 3


def test_an_unreadable_judge_falls_back_to_majority_and_says_so(fake_provider, members):
    fake_provider.model("judge")
    fake_provider.script("m1", Reply.ok("Paris"))
    fake_provider.script("m2", Reply.ok("Paris"))
    fake_provider.script("m3", Reply.ok("Lyon"))
    fake_provider.script("judge", Reply.ok("They are all lovely."))

    result = orchestrator.consensus(QUESTION, models=members, aggregator="judge", judge_model="judge")

    assert result.model == "m1"
    assert "named no answer" in result.explanation


def test_the_judge_aggregator_needs_a_judge(members):
    with pytest.raises(InvalidRequest, match="judge_model"):
        orchestrator.consensus(QUESTION, models=members, aggregator="judge")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"best": 2, "reason": "clear"}', (1, "clear")),
        ('I pick: {"best": "#1", "reason": "r"} thanks', (0, "r")),
        (
            "The best answer is Answer 2 because it is right.",
            (1, "The best answer is Answer 2 because it is right."),
        ),
        ('{"best": 9}', None),
        ("no idea", None),
    ],
)
def test_judge_replies_are_parsed_robustly(reply, expected):
    assert judge_parse(reply, 3) == expected


def test_similarity_picks_the_answer_closest_to_the_others(fake_provider, members):
    fake_provider.script("m1", Reply.ok("Paris is the capital of France"))
    fake_provider.script("m2", Reply.ok("The capital of France is Paris"))
    fake_provider.script("m3", Reply.ok("I like turtles"))

    result = orchestrator.consensus(QUESTION, models=members, aggregator="similarity")

    assert result.model in {"m1", "m2"}
    assert "closest" in result.explanation


def test_fastest_takes_the_first_success_and_cancels_the_others(fake_provider, members):
    fake_provider.script("m1", Reply.hang(10))
    fake_provider.script("m2", Reply.ok("quick"))
    fake_provider.script("m3", Reply.hang(10))

    result = orchestrator.consensus(QUESTION, models=members, aggregator="fastest")

    assert result.model == "m2"
    assert [m.status for m in result.members] == ["cancelled", "ok", "cancelled"]
    statuses = dict(CallRecord.objects.filter(trace_id=result.trace_id).values_list("model_name", "status"))
    assert statuses == {"m1": "cancelled", "m2": "ok", "m3": "cancelled"}
    assert fake_provider.wait_for(lambda history: sum(r.disconnected for r in history) == 2)


def test_normalize_folds_case_whitespace_and_punctuation():
    assert normalize("  Paris!\n") == normalize("paris") == "paris"


def test_a_simulated_judge_picks_the_right_answer_over_a_wrong_majority(db):
    # Two cheap models that always slip, one strong model, a strong simulated judge (issue 15:
    # the judge used to answer a template that named no answer, so majority always decided).
    from tests.routing.engine.conftest import simulated_model

    simulated_model("sim-strong", options={"skills": {"math": 1.0}})
    simulated_model("sim-cheap-1", options={"skills": {"math": 0.0}})
    simulated_model("sim-cheap-2", options={"skills": {"math": 0.0}})
    simulated_model("sim-judge")
    question = [{"role": "user", "content": "What is 17 * 23?"}]

    result = orchestrator.consensus(
        question,
        models=["sim-cheap-1", "sim-cheap-2", "sim-strong"],
        aggregator="judge",
        judge_model="sim-judge",
    )

    assert [m.result.text != "17 * 23 = 391" for m in result.members] == [True, True, False]
    assert result.model == "sim-strong" and result.text == "17 * 23 = 391"
    assert result.judge is not None and result.judge.model == "sim-judge"
    assert "the judge sim-judge chose sim-strong's answer" in result.explanation


def _answered(model: str, text: str):
    return MemberOutcome(model=model, status="ok", result=Result(text=text, model=model, trace_id="t"))


def test_members_run_elsewhere_are_decided_by_the_same_rules_and_words(fake_provider, members):
    fake_provider.script("m1", Reply.ok("Lyon"))
    fake_provider.script("m2", Reply.ok("Paris."))
    fake_provider.script("m3", Reply.ok("  paris "))
    ran_here = orchestrator.consensus(QUESTION, models=members, aggregator="majority")
    outcomes = [_answered("m1", "Lyon"), _answered("m2", "Paris."), _answered("m3", "  paris ")]
    outcomes.append(MemberOutcome(model="m4", status="cancelled", error="stopped"))

    decided = async_to_sync(orchestrator.aconsensus_decide)(QUESTION, outcomes, aggregator="majority")

    assert (decided.model, decided.text, decided.votes) == (ran_here.model, ran_here.text, ran_here.votes)
    assert decided.explanation == ran_here.explanation + " 1 member(s) failed or were cancelled."
    groups = orchestrator.answer_groups(outcomes)
    assert [(g.models, g.votes, g.text) for g in groups] == [(["m2", "m3"], 2, "Paris."), (["m1"], 1, "Lyon")]


def test_a_judge_deciding_members_run_elsewhere_is_one_recorded_call_on_their_trace(fake_provider, members):
    fake_provider.model("judge")
    fake_provider.script("judge", Reply.ok('{"best": 2, "reason": "Correct."}'))
    outcomes = [_answered("m1", "Lyon"), _answered("m2", "Paris")]

    decided = async_to_sync(orchestrator.aconsensus_decide)(
        QUESTION,
        outcomes,
        aggregator="judge",
        judge_model="judge",
        trace_id="trace-of-members",
        source="playground",
    )

    assert decided.model == "m2" and decided.explanation == "the judge judge chose m2's answer: Correct."
    record = CallRecord.objects.get(model_name="judge")
    assert (record.role, record.trace_id, record.source) == ("judge", "trace-of-members", "playground")


def test_deciding_needs_an_answer_and_a_known_aggregator(members):
    with pytest.raises(InvalidRequest, match="No member answered"):
        async_to_sync(orchestrator.aconsensus_decide)(
            QUESTION, [MemberOutcome(model="m1", status="error", error="down")]
        )
    with pytest.raises(InvalidRequest, match="aggregator"):
        async_to_sync(orchestrator.aconsensus_decide)(QUESTION, [_answered("m1", "x")], aggregator="loudest")
