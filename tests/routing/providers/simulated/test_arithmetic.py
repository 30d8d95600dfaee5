"""Arithmetic: parsed by an AST walker, right from strong models, wrong at the cheap ones' rate."""

from __future__ import annotations

from fractions import Fraction

import pytest

from routing.providers.simulated.arithmetic import NotArithmetic, evaluate, find_expression
from tests.routing.providers.simulated.helpers import ask


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is 17 * 23?", "17 * 23 = 391"),
        ("Calculate (3 + 4) * 5.", "(3 + 4) * 5 = 35"),
        ("what's 2^10", "2 ** 10 = 1024"),
        ("What is 7 divided by 2?", "7 / 2 = 3.5"),
        ("How much is 15% of 80?", "(15 / 100 * 80) = 12"),
        ("What is 12 times 12 minus 4?", "12 * 12 - 4 = 140"),
        ("100 - 2 * 3 = ?", "100 - 2 * 3 = 94"),
        ("What is 1,000 + 1?", "1000 + 1 = 1001"),
    ],
)
def test_a_strong_model_gets_the_sum_right(question, answer):
    assert ask(question).text == answer


def test_division_by_zero_is_called_undefined():
    assert "undefined" in ask("What is 5 / 0?").text


@pytest.mark.parametrize(
    "expression",
    ["__import__('os')", "2 ** 1000", "10 ** 40", "a + 1", "[1] * 3", "(1 + 2", "9" * 40 + " * 2"],
)
def test_it_refuses_what_is_not_bounded_arithmetic(expression):
    with pytest.raises(NotArithmetic):
        evaluate(expression)


def test_evaluation_is_exact():
    assert evaluate("0.1 + 0.2") == Fraction(3, 10)


def test_a_date_or_a_range_in_prose_is_not_a_sum():
    assert find_expression("The release on 2024-10-21 fixed it") is not None  # it looks like one…
    assert ask("The release on 2024-10-21 fixed pages 3-5.").skill != "math"  # …but is not asked


def test_only_the_number_when_the_prompt_asks_for_it():
    assert ask("What is 17 * 23? Answer with just the number.").text == "391"


def test_a_cheap_model_errs_at_its_configured_rate_over_many_sums():
    questions = [f"What is {a} * {b}?" for a in range(11, 31) for b in range(11, 21)]  # 200 sums

    wrong = [q for q in questions if not ask(q, model="sim-cheap", skills={"math": 0.6}).correct]
    strong_wrong = [q for q in questions if not ask(q, model="sim-strong", skills={"math": 1.0}).correct]

    assert 0.3 * len(questions) <= len(wrong) <= 0.5 * len(questions)  # about 40 %, deterministic
    assert strong_wrong == []


def test_a_wrong_answer_is_a_plausible_slip_not_the_right_value():
    answers = [ask("What is 17 * 23?", model=f"m{i}", skills={"math": 0.0}) for i in range(10)]

    assert all(a.key != "391" and a.key.lstrip("-").isdigit() for a in answers)
    assert len({a.key for a in answers}) > 1


def test_the_same_seed_gives_the_same_slip_and_another_seed_may_not():
    def keys(seed: int) -> list[str | None]:
        return [
            ask(f"What is {n} * 7?", model="cheap", seed=seed, skills={"math": 0.5}).key for n in range(30)
        ]

    assert keys(1) == keys(1)
    assert keys(1) != keys(2)
