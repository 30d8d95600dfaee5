import pytest

from compare.assertions import (
    AssertionSpec,
    AssertionSpecError,
    assertions_parse,
    check_local,
    checks_passed,
    judge_verdict,
)


def test_equals_compares_with_the_expected_answer_ignoring_case_and_spacing():
    spec = AssertionSpec("equals")
    assert check_local(spec, output="  Paris ", expected="paris")["passed"] is True
    assert check_local(spec, output="Lyon", expected="paris")["passed"] is False


def test_contains_uses_its_own_value_before_the_expected_one():
    spec = AssertionSpec("contains", value="blue")
    assert check_local(spec, output="The sky is Blue.", expected="red")["passed"] is True
    assert check_local(spec, output="The sky is grey.", expected="")["passed"] is False


@pytest.mark.parametrize("kind", ["equals", "contains"])
def test_an_assertion_against_the_expected_value_does_not_apply_to_a_row_without_one(kind):
    for output in ("nothing", ""):
        check = check_local(AssertionSpec(kind), output=output, expected="  ")
        assert check["passed"] is None and check["detail"] == "not applicable: this row has no expected value"


def test_a_cell_passes_on_the_assertions_that_applied_to_it():
    assert checks_passed([{"passed": True}, {"passed": None}]) is True
    assert checks_passed([{"passed": False}, {"passed": None}, {"passed": True}]) is False
    assert checks_passed([{"passed": None}]) is None
    assert checks_passed([]) is None


def test_regex_searches_the_output():
    spec = AssertionSpec("regex", value=r"\b\d{4}\b")
    assert check_local(spec, output="born in 1815", expected="")["passed"] is True
    assert check_local(spec, output="long ago", expected="")["passed"] is False


def test_json_passes_only_valid_json():
    spec = AssertionSpec("json")
    assert check_local(spec, output='{"a": 1}', expected="")["passed"] is True
    failed = check_local(spec, output="{a: 1}", expected="")
    assert failed["passed"] is False and "invalid JSON" in failed["detail"]


def test_a_regex_that_does_not_compile_is_refused_with_its_row():
    with pytest.raises(AssertionSpecError, match=r"Assertion 2: the regex '\(unclosed' does not compile"):
        assertions_parse(["contains", "regex"], ["x", "(unclosed"], ["", ""], known_models=set())


def test_a_judge_needs_a_known_model_and_a_criterion():
    with pytest.raises(AssertionSpecError, match="unknown judge model 'nobody'"):
        assertions_parse(["judge"], ["is polite"], ["nobody"], known_models={"gpt-4o"})
    with pytest.raises(AssertionSpecError, match="say what the judge should check"):
        assertions_parse(["judge"], [""], ["gpt-4o"], known_models={"gpt-4o"})
    specs = assertions_parse(["judge", ""], ["is polite", ""], ["gpt-4o", ""], known_models={"gpt-4o"})
    assert specs == [AssertionSpec("judge", "is polite", "gpt-4o")]


def test_the_judge_verdict_is_read_from_its_first_line_with_the_reason():
    spec = AssertionSpec("judge", "polite", "j")
    assert judge_verdict(spec, "PASS\nIt thanks the user.") == {
        "kind": "judge",
        "label": "judge j",
        "passed": True,
        "detail": "It thanks the user.",
    }
    assert judge_verdict(spec, "**FAIL**: rude")["passed"] is False
    unclear = judge_verdict(spec, "Maybe?")
    assert unclear["passed"] is False and "no PASS/FAIL verdict" in unclear["detail"]
