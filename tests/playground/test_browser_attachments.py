"""The playground's image attachment and tools panel in a real browser: the thumbnail, the size
limit said before anything is sent, and a column showing the tool calls its model made (as
text: arguments holding HTML run nothing)."""

import base64
import json

import pytest

from playground.models import PlaygroundRun
from routing.messages import IMAGE_MAX_BYTES
from tests.browser import login, screenshot_path
from tests.factories import UserFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.browser

DOT_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
ALL_FINISHED = (
    "document.querySelectorAll('.pg-col').length > 0 && Array.from(document.querySelectorAll('.pg-col'))"
    ".every(c => ['ok','error','cancelled'].includes(c.dataset.status))"
)


def test_an_image_and_tools_go_to_a_vision_model_and_its_tool_call_is_shown_as_text(
    live_url, page, fake_provider
):
    fake_provider.model("eyes", capabilities=["vision", "tool_use"])
    hostile = "<img src=x onerror=alert(1)>"
    fake_provider.script("eyes", Reply.tool_call("get_weather", {"city": hostile}, id="call_9"))
    UserFactory(username="pat")
    login(page, live_url, "pat")
    page.goto(f"{live_url}/playground/")
    assert page.locator("label.pg-model:has(input[value='eyes']) [data-vision]").count() == 1

    # Too big: said at once, nothing attached.
    too_big = {"name": "big.png", "mimeType": "image/png", "buffer": b"\0" * (IMAGE_MAX_BYTES + 1)}
    page.set_input_files("#id_image", files=[too_big])
    assert f"the limit is {IMAGE_MAX_BYTES // 1_048_576} MB" in page.inner_text("[data-image-note]")
    assert page.locator("[data-image-thumb]").is_hidden()
    assert page.eval_on_selector("#id_image", "el => el.files.length") == 0

    page.set_input_files("#id_image", files=[{"name": "dot.png", "mimeType": "image/png", "buffer": DOT_PNG}])
    page.wait_for_function("document.querySelector('[data-image-thumb]').src.startsWith('data:image/png')")
    assert page.locator("[data-image-thumb]").is_visible()

    page.check("input[name=models][value='eyes']")
    page.fill("#id_prompt", "What is the weather where this was taken?")
    page.click(".pg-advanced summary")
    page.fill("#id_tools", json.dumps(WEATHER))
    page.fill("#id_tool_choice", "required")
    page.click("#pg-send")
    page.wait_for_function(ALL_FINISHED, timeout=20_000)

    col = page.locator(".pg-col[data-label='eyes']")
    assert col.get_attribute("data-status") == "ok"
    assert col.locator(".pg-tool-name").inner_text() == "get_weather"
    assert json.loads(col.locator(".pg-tool-args").inner_text()) == {"city": hostile}
    assert col.locator(".pg-tool-calls img").count() == 0  # shown as text, never as markup
    assert page.dialogs == []
    (received,) = fake_provider.requests_for("eyes")
    assert received.body["tool_choice"] == "required"
    (user,) = [m for m in received.body["messages"] if m["role"] == "user"]
    assert (
        user["content"][1]["image_url"]["url"]
        == "data:image/png;base64," + base64.b64encode(DOT_PNG).decode()
    )
    page.screenshot(path=screenshot_path("playground-image-and-tools"))

    # The permalink shows the image and the tool call the same way (server-rendered).
    run = PlaygroundRun.objects.get()
    page.goto(f"{live_url}/playground/runs/{run.pk}/")
    assert page.locator(".pg-meta img.pg-thumb").count() == 1
    assert page.locator(".pg-col .pg-tool-name").inner_text() == "get_weather"
    assert json.loads(page.locator(".pg-col .pg-tool-args").inner_text()) == {"city": hostile}
    assert page.dialogs == []


def test_a_tool_call_shows_in_its_column_while_it_streams(live_url, page, fake_provider):
    fake_provider.model("alpha", capabilities=["tool_use"])
    # Three argument fragments 0.4 s apart: the call is on screen, unfinished, for about a second.
    fake_provider.script("alpha", Reply.tool_call("get_weather", {"city": "Oslo"}, token_interval_s=0.4))
    UserFactory(username="pat")
    login(page, live_url, "pat")
    page.goto(f"{live_url}/playground/")
    page.check("input[name=models][value='alpha']")
    page.fill("#id_prompt", "Weather in Oslo?")
    page.click(".pg-advanced summary")
    page.fill("#id_tools", json.dumps(WEATHER))
    page.click("#pg-send")

    page.wait_for_function(
        "(() => { const c = document.querySelector(\".pg-col[data-label='alpha']\");"
        " const n = c && c.querySelector('.pg-tool-name');"
        " return n && n.textContent === 'get_weather' && c.dataset.status === 'streaming'; })()",
        timeout=20_000,
    )
    page.wait_for_function(ALL_FINISHED, timeout=20_000)

    col = page.locator(".pg-col[data-label='alpha']")
    assert col.get_attribute("data-status") == "ok"
    assert col.locator(".pg-tool-name").count() == 1
    assert json.loads(col.locator(".pg-tool-args").inner_text()) == {"city": "Oslo"}
