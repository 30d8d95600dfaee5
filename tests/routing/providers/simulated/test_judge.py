"""Judging in the formats the consensus judge and compare's judge assertion ask for.

The prompts are built by the real builders (routing.engine.consensus, compare.assertions) and
read back by the real parsers, so a change to either side shows up here."""

from __future__ import annotations

from compare.assertions import AssertionSpec, judge_messages, judge_verdict
from routing.engine.consensus import judge_messages as consensus_judge_messages
from routing.engine.consensus import judge_parse
from routing.providers.simulated import SimulatedOptions, profile_for, simulated_answer, task_from_messages

QUESTION = [{"role": "user", "content": "What is 17 * 23?"}]


def judge_says(messages, model: str = "judge", **options) -> str:
    return simulated_answer(
        task_from_messages(messages), profile_for(SimulatedOptions.model_validate(options), model)
    ).text


def test_the_consensus_judge_names_the_right_answer_in_its_format():
    answers = ["17 * 23 = 381", "17 * 23 = 391", "17 * 23 = 401"]

    reply = judge_says(consensus_judge_messages(QUESTION, answers))

    assert judge_parse(reply, 3) == (1, "Answer 2 gives 391, which is correct.")


def test_a_careless_judge_picks_another_answer_but_still_in_the_format():
    answers = ["17 * 23 = 381", "17 * 23 = 391"]

    reply = judge_says(consensus_judge_messages(QUESTION, answers), skills={"judging": 0.0})

    assert judge_parse(reply, 2) is not None and judge_parse(reply, 2)[0] == 0


def test_an_open_question_goes_to_the_answer_on_topic():
    question = [{"role": "user", "content": "Explain how a connection pool works."}]
    answers = ["Bananas are yellow.", "A connection pool keeps open connections and lends them to requests."]

    assert judge_parse(judge_says(consensus_judge_messages(question, answers)), 2)[0] == 1


def test_a_compare_judge_passes_a_right_answer_and_fails_a_wrong_one():
    spec = AssertionSpec(kind="judge", value="The answer is correct.", model="judge")

    right = judge_says(judge_messages(spec, prompt="What is 17 * 23?", output="17 * 23 = 391", expected=""))
    wrong = judge_says(judge_messages(spec, prompt="What is 17 * 23?", output="17 * 23 = 381", expected=""))

    assert judge_verdict(spec, right)["passed"] is True
    assert judge_verdict(spec, wrong)["passed"] is False
    assert "391" in judge_verdict(spec, wrong)["detail"]


def test_a_compare_judge_uses_the_reference_answer():
    spec = AssertionSpec(kind="judge", value="Matches the reference.", model="judge")
    messages = judge_messages(spec, prompt="Capital of France?", output="It is Paris.", expected="Paris")

    assert judge_verdict(spec, judge_says(messages))["passed"] is True


def test_a_negated_value_does_not_count_as_the_right_one():
    from routing.providers.simulated.judge import contains_key

    assert not contains_key("17 * 23 = -391", "391")
    assert contains_key("17 * 23 = 391.", "391")
