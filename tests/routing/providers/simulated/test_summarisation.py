"""Summarisation: shorter than the input, built from its sentences."""

from __future__ import annotations

from routing.providers.simulated.task import sentences
from tests.routing.providers.simulated.helpers import ask

REPORT = (
    "The checkout service failed for 14 minutes on Tuesday. A configuration change doubled the "
    "connection pool and exhausted the database's connection limit. The on-call engineer rolled the "
    "change back. Checkout errors stopped within a minute. The team will add a limit check to the "
    "deploy pipeline. Lunch was pizza."
)


def test_a_summary_is_shorter_and_made_of_the_inputs_sentences():
    summary = ask(REPORT, system="Summarize the following text concisely.").text

    assert len(summary) < len(REPORT)
    assert sentences(summary) and all(s in REPORT for s in sentences(summary))


def test_a_one_sentence_input_is_cut_to_its_main_clause():
    text = "Quarterly revenue grew 12% while costs fell; churn rose slightly in EMEA."

    summary = ask(f"Summarise: {text}").text

    assert len(summary) < len(text)
    assert summary.startswith("Quarterly revenue grew 12%")


def test_a_weak_summary_keeps_the_opening_instead_of_the_key_sentences():
    system = "Summarize the following text concisely."
    strong = ask(REPORT, system=system, skills={"summarization": 1.0}).text
    weak = ask(REPORT, system=system, skills={"summarization": 0.0}).text

    assert weak != strong
    assert weak.startswith("The checkout service failed")
    assert len(weak) < len(REPORT)
