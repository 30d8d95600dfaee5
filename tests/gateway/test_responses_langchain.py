"""LangChain's ChatOpenAI with `use_responses_api=True` (it then speaks only the Responses API)
pointed at the live gateway: the bind_tools loop plain and streamed, and with_structured_output,
answered by the fake provider through chat underneath."""

import json

import pytest
from langchain_core.messages import HumanMessage, ToolMessage

from gateway.services import api_key_create
from metrics.models import CallRecord
from tests.fake_provider import Reply
from tests.gateway.test_clients_langchain import Forecast, chat_model, temperature_in

pytestmark = pytest.mark.django_db(transaction=True)


def tool_loop(llm, *, streamed: bool) -> tuple[list, str]:
    """Ask, run the tools the model called, send the results, read the answer (its text: on the
    Responses API LangChain's content is a list of blocks)."""
    bound = llm.bind_tools([temperature_in])
    history: list = [HumanMessage("What is the temperature in Paris: do I need a coat?")]
    if streamed:
        chunks = list(bound.stream(history))
        first = sum(chunks[1:], chunks[0])
    else:
        first = bound.invoke(history)
    history.append(first)
    for call in first.tool_calls:
        history.append(ToolMessage(str(temperature_in.invoke(call["args"])), tool_call_id=call["id"]))
    answer = bound.stream(history) if streamed else [bound.invoke(history)]
    return first.tool_calls, "".join(part.text for part in answer)


@pytest.fixture
def llm(live_url, fake_provider):
    fake_provider.model("alpha", capabilities=["tool_use"])
    return chat_model(live_url, api_key_create(name="app")[1], "alpha", use_responses_api=True)


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
def test_bind_tools_runs_the_tool_loop_over_the_responses_api(llm, fake_provider, streamed):
    fake_provider.script(
        "alpha",
        Reply.tool_call("temperature_in", {"city": "Paris"}, id="call_weather"),
        Reply.ok("21.5 degrees: no coat needed."),
    )

    calls, answer = tool_loop(llm, streamed=streamed)

    assert [(c["name"], c["args"], c["id"]) for c in calls] == [
        ("temperature_in", {"city": "Paris"}, "call_weather")
    ]
    assert answer == "21.5 degrees: no coat needed."
    first, second = fake_provider.requests_for("alpha")
    assert [t["function"]["name"] for t in first.body["tools"]] == ["temperature_in"]
    assistant, result = second.body["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == "call_weather"
    assert (result["role"], result["tool_call_id"], result["content"]) == ("tool", "call_weather", "21.5")
    assert {r.endpoint for r in CallRecord.objects.all()} == {"responses"}


def test_with_structured_output_gets_a_validated_object_over_the_responses_api(llm, fake_provider):
    fake_provider.script("alpha", Reply.ok(json.dumps({"city": "Paris", "celsius": 21.5})))

    forecast = llm.with_structured_output(Forecast).invoke("Paris?")

    assert forecast == Forecast(city="Paris", celsius=21.5)
    (request,) = fake_provider.requests_for("alpha")
    assert request.body["response_format"]["type"] == "json_schema"
