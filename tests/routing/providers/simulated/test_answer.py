"""Across skills: deterministic for a seed, different across models, each skill dispatched."""

from __future__ import annotations

import pytest

from tests.routing.providers.simulated.helpers import ask

PROMPTS = [
    "What is 17 * 23?",
    "What is the capital of Japan?",
    "Write a haiku about latency.",
    "Name three uses of a hash map.",
    "Should we shard the orders table or add read replicas first? Traffic doubles yearly.",
    "Explain how a connection pool works.",
]


@pytest.mark.parametrize(
    ("prompt", "skill"),
    [
        ("What is 17 * 23?", "math"),
        ("What is the capital of Japan?", "knowledge"),
        ("Summarize: A went up. B went down. C stayed. D left.", "summarization"),
        ("Write a Python function that reverses a string.", "code_generation"),
        ("Reply in JSON with an answer field.", "json"),
        ("Classify as spam or ham. Text: You are a winner, click for a free prize!", "classification"),
        ("Explain how a connection pool works.", "reasoning"),
    ],
)
def test_each_kind_of_prompt_goes_to_its_skill(prompt, skill):
    assert ask(prompt).skill == skill


def test_the_same_model_and_seed_always_answer_the_same():
    first = [ask(p, model="sim-x", seed=3, skill=0.5).text for p in PROMPTS]

    assert first == [ask(p, model="sim-x", seed=3, skill=0.5).text for p in PROMPTS]


def test_models_differ_on_open_prompts_and_agree_on_closed_ones_when_right():
    models = [f"sim-{i}" for i in range(5)]
    open_answers = {ask("Explain how a connection pool works.", model=m).text for m in models}
    closed_answers = {ask("What is the capital of Japan?", model=m).text for m in models}

    assert len(open_answers) > 1
    assert closed_answers == {"The capital of Japan is Tokyo."}


def test_a_cheap_model_is_wrong_more_often_than_a_strong_one_over_a_mixed_set():
    prompts = [f"What is {a} + {a * 7}?" for a in range(100, 140)]
    prompts += [f"What is the capital of {c}?" for c in ("France", "Kenya", "Japan", "Canada", "Spain")] * 4
    cheap = {"skill": 0.6}
    strong = {"skill": 0.98}

    cheap_right = sum(bool(ask(p, model="cheap", **cheap).correct) for p in prompts)
    strong_right = sum(bool(ask(p, model="strong", **strong).correct) for p in prompts)

    assert strong_right >= 0.9 * len(prompts)
    assert 0.45 * len(prompts) <= cheap_right <= 0.75 * len(prompts)


def test_a_prompt_it_cannot_place_is_restated_word_for_word():
    # Pages must escape what models echo (the playground's HTML-injection test relies on it).
    text = ask("<img src=x onerror=alert(1)> and <script>alert(2)</script>").text

    assert "<img src=x onerror=alert(1)>" in text and "<script>alert(2)</script>" in text
