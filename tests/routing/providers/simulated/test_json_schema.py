"""JSON answers: valid against the schema, with values that mean something."""

from __future__ import annotations

import json

import jsonschema
import pytest

from routing.providers.simulated import SimulatedOptions, profile_for, simulated_answer, task_from_messages
from tests.routing.providers.simulated.helpers import ask

SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"enum": ["positive", "negative", "neutral"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 2, "maxItems": 4},
        "count": {"type": "integer", "exclusiveMinimum": 3, "maximum": 5},
        "contact": {"type": "string", "format": "email"},
        "meta": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"ok": {"type": "boolean"}}}]},
    },
    "required": ["sentiment", "confidence", "tags", "count", "extra"],
}


def schema_answer(user: str, schema: dict, **options) -> str:
    messages = [{"role": "user", "content": user}]
    task = task_from_messages(messages, format_type="json_schema", json_schema=schema)
    return simulated_answer(task, profile_for(SimulatedOptions.model_validate(options), "sim-a")).text


def test_a_json_schema_answer_validates_against_the_schema():
    text = schema_answer("This is terrible, I want a refund.", SCHEMA)

    jsonschema.validate(json.loads(text), SCHEMA)


def test_an_enum_is_classified_from_the_input():
    assert json.loads(schema_answer("This is terrible, I want a refund.", SCHEMA))["sentiment"] == "negative"


@pytest.mark.parametrize("seed_text", [f"Review {i}: it was fine I guess." for i in range(20)])
def test_even_a_weak_model_stays_valid_under_a_response_format(seed_text):
    jsonschema.validate(json.loads(schema_answer(seed_text, SCHEMA, skill=0.0)), SCHEMA)


def test_a_schema_in_the_prompt_is_followed():
    prompt = f"Return JSON matching this schema: {json.dumps(SCHEMA)}\nText: Great support, thanks!"

    text = ask(prompt).text

    jsonschema.validate(json.loads(text), SCHEMA)
    assert json.loads(text)["sentiment"] == "positive"


def test_the_fields_the_prompt_names_hold_the_answer():
    value = json.loads(ask("What is 17 * 23? Reply in JSON with fields answer and reason.").text)

    assert value["answer"] == "391" and set(value) == {"answer", "reason"}


def test_a_careless_model_wraps_prompt_only_json_in_prose_and_a_fence():
    text = ask("What is 2 + 2? Reply in JSON with an answer field.", skills={"instructions": 0.0}).text

    assert text.startswith("Sure!") and "```json" in text
    with pytest.raises(ValueError):
        json.loads(text)
