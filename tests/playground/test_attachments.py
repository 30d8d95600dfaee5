"""The playground's image attachment and tools panel: what the form accepts and refuses (a
clear inline message, never a 500), what reaches the model, and the tool calls each column
shows (escaped)."""

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from playground import services
from playground.models import ColumnStatus, PlaygroundColumn, PlaygroundRun, RunMode
from routing.messages import IMAGE_MAX_BYTES
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply
from tests.playground.conftest import sim_model
from tests.playground.test_streaming import read_stream

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
# A 1x1 PNG.
DOT_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _ask(client, *, htmx=True, **data):
    payload = {"mode": "models", "prompt": "What is in this picture?", **data}
    return client.post(reverse("playground:index"), payload, **(HTMX if htmx else {}))


def _png(name="dot.png", content=DOT_PNG, content_type="image/png"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def _errors(response) -> str:
    return response.content.decode()


# -- the form -------------------------------------------------------------------------


def test_the_page_has_a_file_input_an_advanced_tools_panel_and_marks_vision_models(member_client):
    sim_model("sim-eyes", capabilities=["vision", "tool_use"])
    sim_model("sim-text")
    body = member_client.get(reverse("playground:index")).content.decode()
    assert 'enctype="multipart/form-data"' in body and 'hx-encoding="multipart/form-data"' in body
    assert 'type="file" id="id_image" name="image"' in body
    assert f'data-image-max="{IMAGE_MAX_BYTES}"' in body
    assert 'name="tools"' in body and 'name="tool_choice"' in body
    eyes = body.split('value="sim-eyes"')[1].split("</label>")[0]
    text = body.split('value="sim-text"')[1].split("</label>")[0]
    assert "data-vision" in eyes and "data-vision" not in text


def test_an_attached_image_is_saved_as_a_data_uri_and_shown_on_the_permalink(member_client):
    sim_model("sim-eyes", capabilities=["vision"])
    response = _ask(member_client, htmx=False, models=["sim-eyes"], image=_png())
    run = PlaygroundRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("playground:run", args=[run.pk])
    assert run.image == "data:image/png;base64," + base64.b64encode(DOT_PNG).decode()
    page = member_client.get(reverse("playground:run", args=[run.pk])).content.decode()
    assert f'<img class="pg-thumb" src="{run.image}"' in page


def test_an_image_over_the_limit_is_refused_with_the_limit_named(member_client):
    sim_model("sim-eyes", capabilities=["vision"])
    big = _png(content=DOT_PNG + b"\0" * IMAGE_MAX_BYTES)
    response = _ask(member_client, models=["sim-eyes"], image=big)
    assert response.status_code == 200
    assert f"the limit is {IMAGE_MAX_BYTES // 1_048_576} MB" in _errors(response)
    assert not PlaygroundRun.objects.exists()


def test_a_file_that_is_not_an_image_is_refused(member_client):
    sim_model("sim-eyes", capabilities=["vision"])
    response = _ask(member_client, models=["sim-eyes"], image=_png("notes.txt", b"hello", "text/plain"))
    assert "Attach a PNG, JPEG, GIF or WebP image" in _errors(response)
    assert not PlaygroundRun.objects.exists()


def test_an_image_whose_bytes_are_not_base64_safe_is_still_encoded(member_client):
    sim_model("sim-eyes", capabilities=["vision"])
    _ask(member_client, models=["sim-eyes"], image=_png(content=bytes(range(256))))
    assert PlaygroundRun.objects.get().image.startswith("data:image/png;base64,")


def test_tools_and_the_tool_choice_are_kept_in_openai_shape(member_client):
    sim_model("sim-tools", capabilities=["tool_use"])
    response = _ask(
        member_client, models=["sim-tools"], tools=json.dumps([WEATHER]), tool_choice="get_weather"
    )
    assert response.status_code == 200
    run = PlaygroundRun.objects.get()
    assert run.tools == [WEATHER]
    assert run.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    page = member_client.get(reverse("playground:run", args=[run.pk])).content.decode()
    assert "Tools offered" in page and "get_weather" in page


def test_one_tool_object_is_taken_as_a_list_of_one(member_client):
    sim_model("sim-tools", capabilities=["tool_use"])
    _ask(member_client, models=["sim-tools"], tools=json.dumps(WEATHER), tool_choice="required")
    run = PlaygroundRun.objects.get()
    assert (run.tools, run.tool_choice) == ([WEATHER], "required")


@pytest.mark.parametrize(
    ("tools", "choice", "message"),
    [
        ('[{"type": "function", "function": {"name": "x"', "", "Tools: not valid JSON"),
        ('[{"type": "web_search"}]', "", "only function tools are"),
        ('[{"type": "function", "function": {"name": "bad name!"}}]', "", "must be 1-64 letters"),
        (json.dumps([WEATHER]), "get_time", "not among the tools offered"),
        ("", "required", "needs tools"),
        ('"get_weather"', "", "an array of tools"),
    ],
)
def test_bad_tool_definitions_are_an_inline_error_never_a_500(member_client, tools, choice, message):
    sim_model("sim-tools", capabilities=["tool_use"])
    response = _ask(member_client, models=["sim-tools"], tools=tools, tool_choice=choice)
    assert response.status_code == 200
    assert message in _errors(response)
    assert 'class="pg-errors"' in _errors(response)
    assert not PlaygroundRun.objects.exists()


def test_bad_tools_without_htmx_rerender_the_form_with_what_was_typed(member_client):
    sim_model("sim-tools", capabilities=["tool_use"])
    response = _ask(member_client, htmx=False, models=["sim-tools"], tools="[{<b>oops</b>")
    body = response.content.decode()
    assert response.status_code == 200 and "Tools: not valid JSON" in body
    assert "[{&lt;b&gt;oops&lt;/b&gt;" in body


def test_a_consensus_takes_no_image_or_tools(member_client, two_models):
    response = _ask(member_client, mode="consensus", models=["sim-alpha", "sim-beta"], image=_png())
    assert "a consensus compares text only" in _errors(response)
    assert not PlaygroundRun.objects.exists()


# -- the columns ----------------------------------------------------------------------


def test_a_column_shows_its_tool_calls_with_pretty_escaped_arguments(member_client, member_user):
    run = services.run_create(user=member_user, mode=RunMode.MODELS, prompt="hi", models=["m"])
    arguments = json.dumps({"city": "<script>alert(1)</script>"})
    PlaygroundColumn.objects.filter(run=run).update(
        status=ColumnStatus.OK,
        tool_calls=[
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
        ],
    )
    body = member_client.get(reverse("playground:column", args=[run.pk, 0]), **HTMX).content.decode()
    assert '<strong class="pg-tool-name">get_weather</strong>' in body
    assert "{\n  &quot;city&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;\n}" in body
    assert "<script>alert" not in body


def test_a_rerun_forgets_the_tool_calls(member_client, member_user):
    run = services.run_create(user=member_user, mode=RunMode.MODELS, prompt="hi", models=["m"])
    PlaygroundColumn.objects.filter(run=run).update(status=ColumnStatus.OK, tool_calls=[{"id": "x"}])
    member_client.post(reverse("playground:rerun", args=[run.pk, 0]), **HTMX)
    assert PlaygroundColumn.objects.get(run=run).tool_calls == []


# -- what reaches the model -------------------------------------------------------------


def _run_column(client, user, **data):
    _ask(client, **data)
    run = PlaygroundRun.objects.get()
    events = read_stream(user, reverse("playground:column_stream", args=[run.pk, 0]))
    return run, events, PlaygroundColumn.objects.get(run=run, position=0)


@pytest.mark.parametrize("mode", ["models", "route", "chain"])
def test_tools_reach_the_model_and_its_tool_calls_land_in_the_column(
    member_client, member_user, fake_provider, mode
):
    model = fake_provider.model("alpha", capabilities=["tool_use"])
    TaskRouteFactory(task_type="weather", model=model)
    FallbackChainFactory(name="weather", models=[model])
    fake_provider.script("alpha", Reply.tool_call("get_weather", {"city": "Oslo"}, id="call_7"))
    target = {"models": {"models": ["alpha"]}, "route": {"route": "weather"}, "chain": {"chain": "weather"}}

    _run, events, column = _run_column(
        member_client, member_user, mode=mode, tools=json.dumps([WEATHER]), tool_choice="auto", **target[mode]
    )

    (received,) = fake_provider.requests_for("alpha")
    assert received.body["tools"] == [WEATHER] and received.body["tool_choice"] == "auto"
    assert column.status == ColumnStatus.OK
    ((call,),) = [column.tool_calls]
    assert (call["id"], call["type"], call["function"]["name"]) == ("call_7", "function", "get_weather")
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    (done,) = [data for name, data in events if name == "done"]
    assert done["tool_calls"] == column.tool_calls


def test_a_columns_tool_calls_stream_as_pieces_before_the_answer_is_done(
    member_client, member_user, fake_provider
):
    fake_provider.model("alpha", capabilities=["tool_use"])
    fake_provider.script(
        "alpha",
        Reply.tool_calls_of(
            {"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}},
            {"id": "call_2", "name": "get_weather", "arguments": {"city": "Lima"}},
        ),
    )

    _run, events, column = _run_column(
        member_client, member_user, mode="models", models=["alpha"], tools=json.dumps([WEATHER])
    )

    names = [name for name, _data in events]
    pieces = [data for name, data in events if name == "tool_call"]
    assert len(pieces) > 2 and names.index("tool_call") < names.index("done")
    assert [(p["index"], p["name"]) for p in pieces if p["name"]] == [(0, "get_weather"), (1, "get_weather")]
    for index, call in enumerate(column.tool_calls):
        assert "".join(p["arguments"] for p in pieces if p["index"] == index) == call["function"]["arguments"]
    assert all("id" not in p for p in pieces)  # nothing that tells providers apart in a blind round


@pytest.mark.parametrize("mode", ["models", "route", "chain"])
def test_the_image_reaches_a_vision_model_as_an_image_part(member_client, member_user, fake_provider, mode):
    model = fake_provider.model("eyes", capabilities=["vision"])
    TaskRouteFactory(task_type="look", model=model)
    FallbackChainFactory(name="look", models=[model])
    target = {"models": {"models": ["eyes"]}, "route": {"route": "look"}, "chain": {"chain": "look"}}

    _run, _events, column = _run_column(member_client, member_user, mode=mode, image=_png(), **target[mode])

    (received,) = fake_provider.requests_for("eyes")
    (user,) = [m for m in received.body["messages"] if m["role"] == "user"]
    assert user["content"][0] == {"type": "text", "text": "What is in this picture?"}
    assert user["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert column.status == ColumnStatus.OK


def test_a_column_whose_model_lacks_vision_says_so_and_sends_nothing(
    member_client, member_user, fake_provider
):
    fake_provider.model("blind", capabilities=[])

    _run, _events, column = _run_column(member_client, member_user, models=["blind"], image=_png())

    assert fake_provider.requests_for("blind") == []
    assert column.status == ColumnStatus.ERROR
    assert "no vision capability" in column.error


def test_a_chain_skips_its_model_without_vision_and_the_path_says_so(
    member_client, member_user, fake_provider
):
    provider = fake_provider.provider()
    blind = fake_provider.model("blind", provider=provider, capabilities=[])
    eyes = fake_provider.model("eyes", provider=provider, capabilities=["vision"])
    FallbackChainFactory(name="look", models=[blind, eyes])

    _run, _events, column = _run_column(member_client, member_user, mode="chain", chain="look", image=_png())

    assert fake_provider.requests_for("blind") == [] and len(fake_provider.requests_for("eyes")) == 1
    assert (column.status, column.answered_by) == (ColumnStatus.OK, "eyes")
    assert {"model": "blind", "status": "skipped", "reason": "no vision"}.items() <= column.attempts[
        0
    ].items()
    page = member_client.get(reverse("playground:column", args=[column.run_id, 0]), **HTMX).content.decode()
    assert "blind skipped: no vision" in page
