"""Data migrations of compare: what they change in rows stored by earlier versions."""

import importlib

import pytest
from django.apps import apps

from compare.assertions import AssertionSpec
from compare.models import CompareCell, ComparePrompt
from tests.compare.conftest import make_run, simulated_model

pytestmark = pytest.mark.django_db


def test_checks_stored_as_failed_on_rows_without_an_expected_value_become_not_applicable():
    simulated_model("sim-a")
    run = make_run(
        inputs=["Capital of France?", "Any city?"],
        expected=["Paris", ""],
        candidates=["model:sim-a"],
        assertions=[AssertionSpec("equals"), AssertionSpec("contains", value="a"), AssertionSpec("contains")],
    )
    ok = {"passed": True, "detail": ""}
    failed = {"passed": False, "detail": "nothing to look for"}
    labels = [("equals", "equals expected"), ("contains", "contains 'a'"), ("contains", "contains expected")]

    def old_checks(*results):  # what the previous version stored
        return [{"kind": k, "label": label, **r} for (k, label), r in zip(labels, results, strict=True)]

    with_expected = CompareCell.objects.get(prompt=ComparePrompt.objects.get(run=run, position=0))
    without = CompareCell.objects.get(prompt=ComparePrompt.objects.get(run=run, position=1))
    CompareCell.objects.filter(pk=with_expected.pk).update(checks=old_checks(ok, failed, ok), passed=False)
    CompareCell.objects.filter(pk=without.pk).update(checks=old_checks(failed, ok, failed), passed=False)

    importlib.import_module("compare.migrations.0004_checks_not_applicable").checks_not_applicable(apps, None)

    with_expected.refresh_from_db()
    without.refresh_from_db()
    assert [c["passed"] for c in with_expected.checks] == [
        True,
        False,
        True,
    ] and with_expected.passed is False
    assert [c["passed"] for c in without.checks] == [None, True, None] and without.passed is True
    assert without.checks[0]["detail"] == "not applicable: this row has no expected value"
