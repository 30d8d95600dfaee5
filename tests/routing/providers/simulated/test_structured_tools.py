"""Structured output through a tool, as instructor's default mode asks for it (one tool built
from a pydantic model, tool_choice naming it): arguments that validate against the generated
JSON Schema ($defs and $ref, nested objects, lists, enums, optional fields, bounds) and against
the model itself, with the values the prompt gives."""

from __future__ import annotations

import enum
import json
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from routing.messages import chat_options
from routing.providers.base import ProviderSpec
from routing.providers.simulated import reset_random
from tests.routing.providers.conftest import complete, request


class Priority(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Address(BaseModel):
    street: str
    city: str
    country: str = "France"


class User(BaseModel):
    name: str
    age: int = Field(ge=0, le=150)
    email: str | None = None
    address: Address
    tags: list[str] = []


class Ticket(BaseModel):
    title: str
    priority: Priority
    assignee: User | None = None
    estimate_hours: float = Field(gt=0)
    labels: list[Literal["bug", "feature", "question"]] = Field(min_length=1)


class Team(BaseModel):
    users: list[User]


class MathAnswer(BaseModel):
    answer: int
    reasoning: str


class Sentiment(BaseModel):
    sentiment: Literal["positive", "negative", "neutral"]
    confidence: float = Field(ge=0, le=1)


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Tagged(BaseModel):
    tags: list[str] = Field(min_length=2, max_length=4)
    scores: list[int] = Field(default_factory=list)
    kind: Literal["a"] = "a"
    ratio: float = Field(multiple_of=0.25, ge=0, le=1)


def structured(model: type[BaseModel], prompt: str, *, model_id: str = "sim-a") -> dict[str, Any]:
    """What the simulated model returns for `model`, checked against its schema and the model."""
    schema = model.model_json_schema()
    tool = {
        "type": "function",
        "function": {
            "name": model.__name__,
            "description": f"Correctly extracted `{model.__name__}` with all the required parameters",
            "parameters": schema,
        },
    }
    chat = chat_options(
        {"tools": [tool], "tool_choice": {"type": "function", "function": {"name": model.__name__}}}
    )
    reset_random("sim")
    spec = ProviderSpec(name="sim", kind="simulated", options={"latency_ms_mean": 0, "latency_ms_jitter": 0})
    messages = [{"role": "user", "content": prompt}]

    completion = complete(spec, request(model_id, messages=messages, chat=chat))

    (call,) = completion.tool_calls
    assert call["function"]["name"] == model.__name__
    assert completion.finish_reason == "tool_calls"
    arguments = json.loads(call["function"]["arguments"])
    jsonschema.validate(arguments, schema)
    model.model_validate(arguments)
    return arguments


def test_a_person_is_read_from_the_prompt_into_nested_objects_through_refs():
    arguments = structured(
        User, "John Doe is 30 years old, lives at 12 Main Street in Boston, USA, email john@example.com"
    )

    assert arguments == {
        "name": "John Doe",
        "age": 30,
        "email": "john@example.com",
        "address": {"street": "12 Main Street", "city": "Boston", "country": "USA"},
    }


def test_an_enum_an_optional_object_and_a_float_bound_are_honoured():
    arguments = structured(
        Ticket,
        "High priority bug: login page crashes on Safari, assign to Ada Lovelace (36), about 4.5 hours",
    )

    assert arguments["priority"] == "high"
    assert arguments["labels"] == ["bug"]
    assert arguments["estimate_hours"] == 4.5
    assert (arguments["assignee"]["name"], arguments["assignee"]["age"]) == ("Ada Lovelace", 36)


def test_a_list_of_objects_gets_one_item_per_clause_of_the_prompt():
    arguments = structured(Team, "John is 30 and Mary is 25")

    assert [(u["name"], u["age"]) for u in arguments["users"]] == [("John", 30), ("Mary", 25)]


def test_an_answer_field_holds_the_answer_to_the_question():
    assert structured(MathAnswer, "What is 17 * 23?")["answer"] == 391


def test_a_label_field_is_classified_from_the_text():
    assert structured(Sentiment, "I love this product, it is awesome!")["sentiment"] == "positive"


def test_a_recursive_model_ends():
    assert structured(Node, "A tree with root 1 and children 2 and 3")["value"] == 1


def test_list_lengths_constants_and_multiples_are_honoured():
    arguments = structured(Tagged, "Tag it")

    assert 2 <= len(arguments["tags"]) <= 4


@pytest.mark.parametrize("model_id", ["sim-a", "sim-b", "sim-cheap", "gpt-sim"])
@pytest.mark.parametrize("model", [User, Ticket, Team, MathAnswer, Sentiment, Node, Tagged])
@pytest.mark.parametrize(
    "prompt",
    ["", "Hello", "Extract it from: Paris, 2024-05-01, 3 items, ops@example.com, see https://example.com/x"],
)
def test_every_model_gets_valid_arguments_for_any_prompt(model, prompt, model_id):
    structured(model, prompt, model_id=model_id)


MALFORMED = [
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": "zero", "maximum": {"x": 1}}}},
    {
        "type": "object",
        "properties": {"s": {"type": "string", "minLength": [], "format": 3}},
        "required": True,
    },
    {"type": "object", "properties": {"a": {"type": "array", "minItems": "2", "items": "string"}}},
    {"type": "object", "properties": {"u": {"anyOf": ["string", 1]}, "r": {"$ref": "#/$defs/missing"}}},
    {"type": "object", "properties": {"big": {"type": "number", "minimum": 1e308, "maximum": 1e308}}},
]


@pytest.mark.parametrize("parameters", MALFORMED, ids=["bounds", "lengths", "counts", "branches", "huge"])
def test_a_malformed_schema_still_gets_json_arguments_never_a_crash(parameters):
    tool = {"type": "function", "function": {"name": "odd", "parameters": parameters}}
    chat = chat_options({"tools": [tool], "tool_choice": "required"})
    reset_random("sim")
    spec = ProviderSpec(name="sim", kind="simulated", options={"latency_ms_mean": 0, "latency_ms_jitter": 0})

    completion = complete(spec, request("sim-a", messages=[{"role": "user", "content": "Go 3"}], chat=chat))

    (call,) = completion.tool_calls
    assert isinstance(json.loads(call["function"]["arguments"]), dict)
