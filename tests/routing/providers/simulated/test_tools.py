"""Tool calls from a simulated model, through the transport: the tool that fits, arguments valid
against its schema and read from the prompt, several calls for several asks, an answer that
quotes the tools' results, and the same calls streamed as pieces."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from routing.messages import chat_options
from routing.providers.base import Completion, ProviderSpec, StreamEnd, ToolCallDelta
from routing.providers.simulated import reset_random
from tests.routing.providers.conftest import complete, request, stream


def function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


WEATHER = function(
    "get_weather",
    "Get the current weather for a city.",
    {
        "city": {"type": "string", "description": "The city name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    ["city"],
)
TIME = function("get_time", "The local time in a city.", {"location": {"type": "string"}}, ["location"])
CONVERT = function(
    "convert_currency",
    "Convert an amount of money from one currency to another.",
    {
        "amount": {"type": "number", "exclusiveMinimum": 0},
        "from_currency": {"type": "string"},
        "to_currency": {"type": "string"},
    },
    ["amount", "from_currency", "to_currency"],
)
SEARCH = function(
    "web_search",
    "Search the web.",
    {"query": {"type": "string"}, "max_results": {"type": "integer", "minimum": 1, "maximum": 10}},
    ["query"],
)
FINAL = function(
    "final_result",
    "The final response which ends this conversation.",
    {"city": {"type": "string"}, "temperature": {"type": "number"}, "summary": {"type": "string"}},
    ["city", "temperature", "summary"],
)
TOOLS = [WEATHER, TIME, CONVERT, SEARCH]


def sim() -> ProviderSpec:
    reset_random("sim")
    return ProviderSpec(name="sim", kind="simulated", options={"latency_ms_mean": 0, "latency_ms_jitter": 0})


def ask(text: str, tools: list[dict[str, Any]] = TOOLS, **chat: Any) -> Completion:
    messages = [{"role": "user", "content": text}]
    return complete(sim(), request("sim-a", messages=messages, chat=chat_options({"tools": tools, **chat})))


def calls(completion: Completion, tools: list[dict[str, Any]] = TOOLS) -> list[tuple[str, dict[str, Any]]]:
    """(name, arguments) of each call, every argument object checked against its tool's schema."""
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    found = []
    for call in completion.tool_calls:
        assert call["type"] == "function"
        assert call["id"].startswith("call_")
        arguments = json.loads(call["function"]["arguments"])
        jsonschema.validate(arguments, schemas[call["function"]["name"]])
        found.append((call["function"]["name"], arguments))
    return found


def test_a_weather_question_calls_the_weather_tool_with_the_city():
    completion = ask("What's the weather in Paris?")

    assert calls(completion) == [("get_weather", {"city": "Paris"})]
    assert (completion.text, completion.finish_reason) == ("", "tool_calls")
    assert completion.simulated


def test_the_same_request_gets_the_same_ids_and_arguments():
    first, second = ask("What's the weather in Paris?"), ask("What's the weather in Paris?")
    other = ask("What's the weather in Rome?")

    assert first.tool_calls == second.tool_calls
    assert first.tool_calls[0]["id"] != other.tool_calls[0]["id"]


def test_an_enum_the_prompt_names_and_a_city_of_two_words_are_read():
    assert calls(ask("What's the weather in New York in fahrenheit?")) == [
        ("get_weather", {"city": "New York", "unit": "fahrenheit"})
    ]


def test_an_ask_about_two_cities_calls_the_tool_once_for_each():
    completion = ask("What's the weather in Paris and Tokyo?")

    assert calls(completion) == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Tokyo"})]
    assert len({call["id"] for call in completion.tool_calls}) == 2


def test_an_ask_for_two_things_calls_two_tools():
    assert calls(ask("What's the weather in Paris and the time in Tokyo?")) == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"location": "Tokyo"}),
    ]


def test_parallel_tool_calls_false_makes_a_single_call():
    completion = ask("What's the weather in Paris and Tokyo?", parallel_tool_calls=False)

    assert calls(completion) == [("get_weather", {"city": "Paris"})]


def test_a_conversion_takes_the_amount_and_the_currencies_in_their_directions():
    assert calls(ask("Convert 100 USD to EUR please")) == [
        ("convert_currency", {"amount": 100, "from_currency": "USD", "to_currency": "EUR"})
    ]
    assert calls(ask("How many GBP do I get for 25.5 JPY? Convert to GBP from JPY.")) == [
        ("convert_currency", {"amount": 25.5, "from_currency": "JPY", "to_currency": "GBP"})
    ]


def test_a_search_takes_the_quoted_query_and_the_number_of_results():
    assert calls(ask('Search the web for "django htmx partials", top 3 results')) == [
        ("web_search", {"query": "django htmx partials", "max_results": 3})
    ]


def test_a_number_outside_the_schema_bounds_is_brought_inside():
    assert calls(ask('Search the web for "pgbouncer", show 50 results')) == [
        ("web_search", {"query": "pgbouncer", "max_results": 10})
    ]


def test_auto_answers_in_text_when_no_tool_fits():
    completion = ask("What is the capital of France?", tool_choice="auto")

    assert completion.tool_calls == []
    assert (completion.text, completion.finish_reason) == ("The capital of France is Paris.", "stop")


def test_required_calls_the_best_tool_even_when_none_fits():
    completion = ask("Tell me a joke", tool_choice="required")

    assert len(calls(completion)) == 1
    assert completion.finish_reason == "tool_calls"


def test_required_prefers_an_output_tool_when_nothing_fits():
    completion = ask("Tell me a joke", [WEATHER, FINAL], tool_choice="required")

    assert calls(completion, [WEATHER, FINAL])[0][0] == "final_result"


def test_tool_choice_none_never_calls_a_tool():
    completion = ask("What's the weather in Paris?", tool_choice="none")

    assert completion.tool_calls == []
    assert completion.text and completion.finish_reason == "stop"


def test_a_named_tool_choice_calls_that_tool_even_when_another_fits():
    named = {"type": "function", "function": {"name": "get_time"}}

    assert calls(ask("What's the weather in Paris?", tool_choice=named)) == [
        ("get_time", {"location": "Paris"})
    ]


def test_a_tool_without_parameters_gets_an_empty_object():
    ping = {"type": "function", "function": {"name": "ping_server", "description": "Ping the server."}}

    completion = ask("Ping the server now", [ping])

    assert [(c["function"]["name"], c["function"]["arguments"]) for c in completion.tool_calls] == [
        ("ping_server", "{}")
    ]


WEATHER_CALLS = [
    {
        "id": "call_p",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    },
    {
        "id": "call_t",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'},
    },
]
AFTER_RESULTS = [
    {"role": "user", "content": "What's the weather in Paris and Tokyo?"},
    {"role": "assistant", "content": None, "tool_calls": WEATHER_CALLS},
    {"role": "tool", "tool_call_id": "call_p", "content": '{"temperature": 18, "conditions": "cloudy"}'},
    {"role": "tool", "tool_call_id": "call_t", "content": "25 degrees and sunny"},
]


def test_after_the_tool_results_it_answers_in_text_quoting_them():
    chat = chat_options({"tools": TOOLS})

    completion = complete(sim(), request("sim-a", messages=AFTER_RESULTS, chat=chat))

    assert completion.tool_calls == []
    assert completion.finish_reason == "stop"
    assert completion.text == (
        "From the tool results: get_weather(Paris) returned temperature: 18, conditions: cloudy; "
        "get_weather(Tokyo) returned 25 degrees and sunny."
    )


def test_after_the_tool_results_a_required_call_goes_to_a_tool_not_called_yet_with_their_values():
    tools = [WEATHER, FINAL]
    chat = chat_options({"tools": tools, "tool_choice": "required"})

    completion = complete(sim(), request("sim-a", messages=AFTER_RESULTS, chat=chat))

    ((name, arguments),) = calls(completion, tools)
    assert name == "final_result"
    assert (arguments["city"], arguments["temperature"]) == ("Paris", 18)
    assert "cloudy" in arguments["summary"] and "sunny" in arguments["summary"]


def test_a_bare_value_a_tool_returned_fills_the_output_tools_arguments():
    thermometer = function(
        "temperature_in", "The temperature in a city.", {"city": {"type": "string"}}, ["city"]
    )
    call = {
        "id": "call_x",
        "type": "function",
        "function": {"name": "temperature_in", "arguments": '{"city": "Oslo"}'},
    }
    messages = [
        {"role": "user", "content": "How warm is it in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_x", "content": "21.5"},
    ]
    tools = [thermometer, FINAL]

    completion = complete(
        sim(),
        request("sim-a", messages=messages, chat=chat_options({"tools": tools, "tool_choice": "required"})),
    )

    ((name, arguments),) = calls(completion, tools)
    assert name == "final_result"
    assert (arguments["city"], arguments["temperature"]) == ("Oslo", 21.5)


def test_a_new_question_after_an_answered_call_calls_a_tool_again():
    messages = [
        *AFTER_RESULTS,
        {"role": "assistant", "content": "Paris is cloudy, Tokyo sunny."},
        {"role": "user", "content": "And what time is it in Lima?"},
    ]

    completion = complete(sim(), request("sim-a", messages=messages, chat=chat_options({"tools": TOOLS})))

    assert calls(completion) == [("get_time", {"location": "Lima"})]


def test_a_streamed_call_arrives_as_its_id_and_name_then_argument_fragments():
    chat = chat_options({"tools": TOOLS})
    messages = [{"role": "user", "content": "What's the weather in Paris and Tokyo?"}]

    *pieces, end = stream(sim(), request("sim-a", messages=messages, chat=chat))

    assert all(isinstance(p, ToolCallDelta) for p in pieces)
    firsts = [p for p in pieces if p.id]
    assert [(p.index, p.name, p.arguments) for p in firsts] == [
        (0, "get_weather", ""),
        (1, "get_weather", ""),
    ]
    fragments = [p for p in pieces if not p.id]
    assert len(fragments) > 2 and all(p.name is None for p in fragments)
    assert isinstance(end, StreamEnd)
    assert end.finish_reason == "tool_calls"
    assert end.tool_calls == ask("What's the weather in Paris and Tokyo?").tool_calls
    for index, call in enumerate(end.tool_calls):
        assert call["id"] == firsts[index].id
        assert "".join(p.arguments for p in fragments if p.index == index) == call["function"]["arguments"]


def test_a_streamed_answer_after_tool_results_is_text():
    *words, end = stream(sim(), request("sim-a", messages=AFTER_RESULTS, chat=chat_options({"tools": TOOLS})))

    assert "".join(words).startswith("From the tool results:")
    assert (end.finish_reason, end.tool_calls) == ("stop", [])
