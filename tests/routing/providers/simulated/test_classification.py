"""Classification: exactly one of the labels the prompt lists."""

from __future__ import annotations

import pytest

from routing.providers.simulated.classification import labels_in
from tests.routing.providers.simulated.helpers import ask

ROUTE = (
    "Classify the input into exactly one category: billing, shipping, technical, account, feedback.\n"
    "Return only the category name, nothing else."
)


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        (
            "Classify the input into exactly one category: billing, shipping, other.",
            ["billing", "shipping", "other"],
        ),
        ("Label the sentiment as positive, negative or neutral.", ["positive", "negative", "neutral"]),
        ("Choose one of: spam / not spam.", ["spam", "not spam"]),
        ("Categories:\n- urgent\n- normal\n- low", ["urgent", "normal", "low"]),
    ],
)
def test_it_reads_the_labels_the_prompt_lists(text, labels):
    assert labels_in(text) == labels


@pytest.mark.parametrize(
    ("ticket", "label"),
    [
        ("Invoice #4411 is overdue by 30 days.", "billing"),
        ("My parcel never arrived.", "shipping"),
        ("The app crashes when I log in.", "technical"),
        ("Great product, thanks!", "feedback"),
    ],
)
def test_a_strong_model_picks_the_fitting_label(ticket, label):
    assert ask(ticket, system=ROUTE).text == label


def test_every_answer_is_exactly_one_listed_label_even_from_a_weak_model():
    tickets = [f"Ticket {i}: my card was charged twice for order {i}." for i in range(60)]
    labels = {"billing", "shipping", "technical", "account", "feedback"}

    answers = [ask(t, system=ROUTE, model="sim-cheap", skills={"classification": 0.7}) for t in tickets]

    assert {a.text for a in answers} <= labels
    assert 0.15 * len(tickets) <= sum(a.text != "billing" for a in answers) <= 0.45 * len(tickets)


def test_labels_in_the_user_message_work_too():
    answer = ask("Classify the sentiment as positive, negative or neutral. Text: I love it, great work!")

    assert answer.text == "positive"
