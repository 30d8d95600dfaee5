"""The playground in a real browser: Chromium driving the ASGI app under uvicorn."""

import pytest

from metrics.models import CallRecord
from playground.models import PlaygroundColumn, PlaygroundRun, Vote
from playground.templatetags.playground_tags import usd
from routing.models import PromptVersion
from tests.browser import login, screenshot_path
from tests.factories import FallbackChainFactory, TaskRouteFactory, UserFactory
from tests.playground.conftest import FAILING, keyless_model, sim_model

pytestmark = pytest.mark.browser

STREAMY = {"latency_ms_mean": 300, "latency_ms_jitter": 0, "ttft_ms": 100, "tokens_per_second": 25}
SLOW = {"latency_ms_mean": 3000, "latency_ms_jitter": 0, "ttft_ms": 50, "tokens_per_second": 4}
ALL_FINISHED = (
    "Array.from(document.querySelectorAll('.pg-col')).length > 0 && "
    "Array.from(document.querySelectorAll('.pg-col')).every(c => ['ok','error','cancelled'].includes(c.dataset.status))"
)


def _open(page, live_url, path="/playground/"):
    UserFactory(username="pat")
    login(page, live_url, "pat")
    page.goto(f"{live_url}{path}")


def _send(page, prompt, models):
    for name in models:
        page.check(f"input[name=models][value='{name}']")
    page.fill("#id_prompt", prompt)
    page.click("#pg-send")


def test_two_models_stream_side_by_side_and_finish_with_cost_and_latency(live_url, page):
    sim_model("sim-alpha", options=STREAMY)
    sim_model("sim-beta", options=STREAMY)
    _open(page, live_url)
    _send(page, "Explain caching in one paragraph", ["sim-alpha", "sim-beta"])
    # Both columns are live at once (concurrent, not one after the other).
    page.wait_for_function(
        "document.querySelectorAll('.pg-col[data-status=streaming]').length === 2", timeout=10_000
    )
    page.wait_for_function(ALL_FINISHED, timeout=20_000)
    for position in (0, 1):
        col = page.locator(f".pg-col[data-position='{position}']")
        assert col.get_attribute("data-status") == "ok"
        assert col.locator("[data-field=text]").inner_text().strip()
        assert col.locator("[data-field=cost]").inner_text().startswith("$")
        assert col.locator("[data-field=latency]").inner_text().endswith(("ms", "s"))
        assert col.locator("[data-field=ttft]").inner_text() != "—"
    assert PlaygroundColumn.objects.filter(status="ok").count() == 2
    assert CallRecord.objects.filter(source="playground", status="ok").count() == 2
    assert page.dialogs == []
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path=screenshot_path("playground-side-by-side"))


def test_a_failing_model_shows_its_error_while_the_other_succeeds(live_url, page):
    sim_model("sim-good", options=STREAMY)
    sim_model("sim-down", options=FAILING)
    _open(page, live_url)
    _send(page, "Hello there", ["sim-good", "sim-down"])
    page.wait_for_function(ALL_FINISHED, timeout=20_000)
    good = page.locator(".pg-col[data-label='sim-good']")
    down = page.locator(".pg-col[data-label='sim-down']")
    assert good.get_attribute("data-status") == "ok"
    assert down.get_attribute("data-status") == "error"
    assert "server error" in down.locator("[data-field=error]").inner_text()
    assert good.locator("[data-field=text]").inner_text().strip()


def test_ctrl_enter_sends(live_url, page):
    sim_model("sim-alpha")
    _open(page, live_url)
    page.check("input[name=models][value='sim-alpha']")
    page.fill("#id_prompt", "Quick one")
    page.focus("#id_prompt")
    page.keyboard.press("Control+Enter")
    page.wait_for_function(ALL_FINISHED, timeout=10_000)
    assert PlaygroundRun.objects.get().prompt == "Quick one"


def test_bad_input_shows_an_inline_message_and_sends_nothing(live_url, page):
    sim_model("sim-alpha")
    _open(page, live_url)
    page.fill("#id_prompt", "Nobody picked")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#pg-errors .pg-errors")
    assert "Pick at least one model." in page.inner_text("#pg-errors")
    assert page.input_value("#id_prompt") == "Nobody picked"
    assert not PlaygroundRun.objects.exists()
    page.check("input[name=models][value='sim-alpha']")  # fixed: the message goes away
    page.keyboard.press("Control+Enter")
    page.wait_for_function(ALL_FINISHED, timeout=10_000)
    assert page.inner_text("#pg-errors").strip() == ""


def test_html_in_answers_is_shown_as_text_and_runs_nothing(live_url, page):
    # The simulated provider echoes the prompt's words into its answer.
    sim_model("sim-echo")
    _open(page, live_url)
    _send(page, "<img src=x onerror=alert(1)> and <script>alert(2)</script>", ["sim-echo"])
    page.wait_for_function(ALL_FINISHED, timeout=10_000)
    text = page.locator(".pg-col [data-field=text]").inner_text()
    assert "<img src=x onerror=alert(1)>" in text
    assert "<script>alert(2)</script>" in text
    assert page.locator(".pg-col img, .pg-col script").count() == 0
    page.click(".pg-col [data-action=markdown]")  # the sanitised Markdown view
    page.wait_for_selector(".pg-col [data-field=markdown]:not([hidden])")
    assert page.locator(".pg-col img, .pg-col script").count() == 0
    # And the saved answer on the permalink.
    page.goto(f"{live_url}/playground/runs/{PlaygroundRun.objects.get().pk}/")
    assert "<img src=x onerror=alert(1)>" in page.locator(".pg-col [data-field=text]").inner_text()
    assert page.locator("main img, main script").count() == 0
    assert page.dialogs == []


def test_a_consensus_shows_every_member_and_the_aggregate(live_url, page):
    for name in ("c1", "c2", "c3"):
        sim_model(name, options=STREAMY)
    _open(page, live_url)
    page.check("input[name=mode][value=consensus]")
    _send(page, "Is the sky blue?", ["c1", "c2", "c3"])
    page.wait_for_selector(".pg-consensus[data-status=ok]", timeout=20_000)
    panel = page.locator(".pg-consensus")
    assert panel.locator("[data-field=text]").inner_text().strip()
    assert panel.locator("[data-field=explanation]").inner_text().strip()
    assert panel.locator("[data-field=votes] tbody tr").count() >= 1
    assert page.locator(".pg-col[data-status=ok]").count() == 3
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path=screenshot_path("playground-consensus"), full_page=True)


def test_a_fastest_consensus_shows_what_the_cancelled_member_billed(live_url, page):
    sim_model("quick", options=STREAMY)
    sim_model("sluggish", options=SLOW)
    _open(page, live_url)
    page.check("input[name=mode][value=consensus]")
    page.select_option("#id_aggregator", "fastest")
    _send(page, "Who answers first?", ["quick", "sluggish"])
    page.wait_for_selector(".pg-consensus[data-status=ok]", timeout=20_000)
    cancelled = page.locator(".pg-col[data-label='sluggish']")
    assert cancelled.get_attribute("data-status") == "cancelled"
    cost = cancelled.locator("[data-field=cost]").inner_text()
    assert cost.startswith("$") and cost.endswith("(partial: cancelled)")
    total = page.locator(".pg-consensus [data-field=cost]").inner_text()
    billed = sum(r.cost_usd for r in CallRecord.objects.filter(trace_id=PlaygroundRun.objects.get().trace_id))
    assert total == usd(billed)


def test_an_arena_vote_reveals_the_names_and_updates_the_leaderboard(live_url, page):
    sim_model("sim-alpha", options=STREAMY, capabilities=["chat"])
    sim_model("sim-beta", options=STREAMY, capabilities=["chat"])
    _open(page, live_url, "/playground/arena/")
    page.select_option("#id_capability", "chat")
    page.fill("#id_prompt", "Write a haiku about queues")
    page.click("#pg-send")
    page.wait_for_function(ALL_FINISHED, timeout=20_000)
    body = page.inner_text(".pg-round")
    assert "sim-alpha" not in body and "sim-beta" not in body
    page.click("button[name=winner][value=a]")
    page.wait_for_selector("[data-revealed]")
    vote = Vote.objects.get()
    assert page.inner_text("[data-reveal=a]") == vote.model_a
    assert page.inner_text("[data-reveal=b]") == vote.model_b
    assert vote.winner == "a" and vote.capability == "chat"
    page.click("text=See the leaderboard")
    page.wait_for_selector(".pg-leaderboard")
    rows = page.locator(".pg-leaderboard tbody tr")
    assert rows.first.get_attribute("data-model") == vote.model_a
    assert rows.count() == 2


def test_a_permalink_reopens_the_run_for_a_teammate(live_url, page):
    sim_model("sim-alpha")
    sim_model("sim-beta")
    _open(page, live_url)
    _send(page, "Permalink me", ["sim-alpha", "sim-beta"])
    page.wait_for_function(ALL_FINISHED, timeout=10_000)
    answers = [page.locator(f".pg-col[data-position='{i}'] [data-field=text]").inner_text() for i in (0, 1)]
    href = page.get_attribute(".pg-permalink", "href")
    page.context.clear_cookies()
    UserFactory(username="quinn")
    login(page, live_url, "quinn")
    page.goto(f"{live_url}{href}")
    assert "Permalink me" in page.inner_text(".pg-meta")
    for i in (0, 1):
        assert page.locator(f".pg-col[data-position='{i}'] [data-field=text]").inner_text() == answers[i]
    assert page.locator(".pg-col [data-action=rerun]").count() == 0
    assert page.locator(".pg-records tbody tr").count() == 2


def test_stop_cancels_the_streams_and_the_calls_are_recorded_as_cancelled(live_url, page):
    sim_model("sim-slow", options=SLOW)
    _open(page, live_url)
    _send(page, "Tell a very long story about the sea and the ships upon it", ["sim-slow"])
    page.wait_for_function(
        "(document.querySelector('.pg-col [data-field=text]')?.textContent || '').length > 0", timeout=10_000
    )
    page.click("[data-action=stop]")
    page.wait_for_selector(".pg-col[data-status=cancelled]")
    column = PlaygroundColumn.objects.get()
    # The server notices the closed connection, writes the cancelled record, then the
    # column's status (in that order): wait for both, not just the first.
    for _ in range(200):
        column.refresh_from_db()
        if (
            column.status == "cancelled"
            and CallRecord.objects.filter(trace_id=column.trace_id, status="cancelled").exists()
        ):
            break
        page.wait_for_timeout(50)
    assert CallRecord.objects.get(trace_id=column.trace_id).status == "cancelled"
    assert column.status == "cancelled"


def test_choosing_a_route_prefills_its_system_prompt_and_shows_the_path(live_url, page):
    model = sim_model("sim-routed")
    route = TaskRouteFactory(task_type="summarise", model=model)
    route.active_prompt = PromptVersion.objects.create(
        route=route, version=2, system_prompt="Summarise tersely."
    )
    route.save()
    _open(page, live_url)
    page.check("input[name=mode][value=route]")
    page.select_option("#id_route", "summarise")
    page.wait_for_function("document.querySelector('#id_system_prompt').value === 'Summarise tersely.'")
    page.fill("#id_prompt", "A long text to summarise")
    page.click("#pg-send")
    page.wait_for_function(ALL_FINISHED, timeout=10_000)
    col = page.locator(".pg-col")
    assert col.get_attribute("data-status") == "ok"
    assert "sim-routed" in col.locator("[data-field=path]").inner_text()


def test_a_route_shows_its_main_model_skipped_for_a_missing_key_and_the_model_that_answered(live_url, page):
    chain = FallbackChainFactory(name="spare", models=[sim_model("spare-1", options=STREAMY)])
    TaskRouteFactory(task_type="triage", model=keyless_model("gpt-keyless"), fallback_chain=chain)
    _open(page, live_url)
    page.check("input[name=mode][value=route]")
    page.select_option("#id_route", "triage")
    page.fill("#id_prompt", "Which queue does this go to?")
    page.click("#pg-send")
    skipped = "gpt-keyless skipped: provider openai-gpt-keyless needs its key: set PLAYGROUND_TEST_UNSET_KEY"
    path = page.locator(".pg-col [data-field=path] li")
    page.wait_for_function(  # live, before the answer ends
        "document.querySelector('.pg-col [data-field=path] li')?.textContent.includes('skipped')",
        timeout=10_000,
    )
    assert path.first.inner_text() == skipped
    page.wait_for_function(ALL_FINISHED, timeout=10_000)
    assert [path.nth(i).inner_text() for i in range(path.count())] == [skipped, "spare-1 #1: ok"]
    page.goto(f"{live_url}{page.get_attribute('.pg-permalink', 'href')}")  # the saved path is the same
    assert [path.nth(i).inner_text() for i in range(path.count())] == [skipped, "spare-1 #1: ok"]


def test_diff_and_highlight_mark_the_differing_words(live_url, page):
    sim_model("sim-alpha")
    sim_model("sim-beta")
    _open(page, live_url)
    _send(page, "Compare us", ["sim-alpha", "sim-beta"])
    page.wait_for_function(ALL_FINISHED, timeout=10_000)
    page.evaluate(
        "(() => { const cols = document.querySelectorAll('.pg-col [data-field=text]');"
        " cols[0].textContent = 'the cat sat on the mat'; cols[1].textContent = 'the dog sat on the mat'; })()"
    )
    page.click("[data-action=diff]")
    assert page.inner_text(".pg-diff del") == "cat"
    assert page.inner_text(".pg-diff ins") == "dog"
    page.check("[data-action=highlight]")
    assert page.locator(".pg-col[data-position='1'] mark").inner_text() == "dog"
    page.uncheck("[data-action=highlight]")
    assert page.locator(".pg-col mark").count() == 0


def test_rerun_streams_that_column_again_with_a_new_trace(live_url, page):
    sim_model("sim-alpha")
    sim_model("sim-beta")
    _open(page, live_url)
    _send(page, "Again please", ["sim-alpha", "sim-beta"])
    page.wait_for_function(ALL_FINISHED, timeout=10_000)
    before = PlaygroundColumn.objects.get(target_model="sim-beta").trace_id
    with (
        page.expect_response(lambda r: "/stream/" in r.url),
        page.expect_response(lambda r: "/rerun/" in r.url),
    ):
        page.click(".pg-col[data-label='sim-beta'] [data-action=rerun]")
    page.wait_for_function(
        "document.querySelector(\".pg-col[data-label='sim-beta']\").dataset.status === 'ok'"
        " && !document.querySelector(\".pg-col[data-label='sim-beta']\").hasAttribute('data-stream-url')",
        timeout=10_000,
    )
    after = PlaygroundColumn.objects.get(target_model="sim-beta")
    assert after.trace_id != before and after.status == "ok"
    assert CallRecord.objects.filter(trace_id=after.trace_id, status="ok").count() == 1
    assert page.locator(".pg-col[data-label='sim-alpha']").get_attribute("data-status") == "ok"


def test_an_arena_round_where_an_answer_failed_offers_no_vote(live_url, page):
    sim_model("sim-alpha", options=STREAMY, capabilities=["chat"])
    sim_model("sim-broken", options=FAILING, capabilities=["chat"])
    _open(page, live_url, "/playground/arena/")
    page.select_option("#id_capability", "chat")
    page.fill("#id_prompt", "Write a haiku about queues")
    page.click("#pg-send")
    page.wait_for_function(ALL_FINISHED, timeout=20_000)
    page.wait_for_selector("[data-arena-failed]:not([hidden])")
    assert all(button.is_disabled() for button in page.query_selector_all("button[name=winner]"))
    assert "sim-broken" not in page.inner_text(".pg-round")  # still blind
    # Even a forced click is refused by the server, and its reason is shown.
    page.evaluate("document.querySelector('button[name=winner][value=a]').disabled = false")
    page.click("button[name=winner][value=a]")
    page.wait_for_selector(".pg-vote .pg-error:not([data-arena-failed])")
    assert "cannot be rated" in page.inner_text(".pg-vote .pg-error:not([data-arena-failed])")
    assert not Vote.objects.exists()


def test_the_history_keeps_dates_on_one_line_next_to_a_long_prompt(live_url, page):
    user = UserFactory(username="pat")
    PlaygroundRun.objects.create(user=user, mode="models", prompt="a" * 500)
    login(page, live_url, "pat")
    page.goto(f"{live_url}/playground/history/")
    lines = page.evaluate(
        "(() => { const r = document.createRange();"
        " r.selectNodeContents(document.querySelector('.pg-history tbody td:nth-child(2)'));"
        " return r.getClientRects().length; })()"
    )
    assert lines == 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_switching_from_a_route_to_a_chain_sends_no_route_prompt(live_url, page, fake_provider):
    model = fake_provider.model("routed")
    route = TaskRouteFactory(task_type="translation", model=model)
    route.active_prompt = PromptVersion.objects.create(
        route=route, version=1, system_prompt="Translate into French."
    )
    route.save()
    FallbackChainFactory(name="backup", models=[fake_provider.model("chained", provider=model.provider)])
    _open(page, live_url)
    page.check("input[name=mode][value=route]")
    page.select_option("#id_route", "translation")
    page.wait_for_function("document.querySelector('#id_system_prompt').value === 'Translate into French.'")
    page.check("input[name=mode][value=chain]")
    assert page.input_value("#id_system_prompt") == ""
    page.select_option("#id_chain", "backup")
    page.fill("#id_prompt", "Good morning")
    page.click("#pg-send")
    page.wait_for_function(ALL_FINISHED, timeout=10_000)
    (sent,) = fake_provider.requests_for("chained")
    assert [m["role"] for m in sent.body["messages"]] == ["user"]
    assert PlaygroundRun.objects.get().system_prompt == ""
    # Back in route mode the route's prompt is in the box again.
    page.check("input[name=mode][value=route]")
    assert page.input_value("#id_system_prompt") == "Translate into French."


def test_the_arena_shows_no_timing_tokens_cost_or_model_before_the_vote(live_url, page):
    sim_model("sim-quick", options=STREAMY, capabilities=["chat"])
    sim_model("sim-slow", options={**STREAMY, "ttft_ms": 900, "latency_ms_mean": 1500}, capabilities=["chat"])
    _open(page, live_url, "/playground/arena/")
    page.select_option("#id_capability", "chat")
    page.fill("#id_prompt", "Write a haiku about queues")
    page.click("#pg-send")
    # While one answer is done and the other still streams, neither shows anything.
    page.wait_for_function("document.querySelector('.pg-col[data-status=ok]') !== null", timeout=20_000)
    if not page.evaluate(ALL_FINISHED):
        done = page.locator(".pg-col[data-status=ok]").first
        assert not done.locator("[data-field=text]").is_visible()
        assert not done.locator("[data-field=status]").is_visible()
    page.wait_for_function(ALL_FINISHED, timeout=20_000)
    round_ = page.locator(".pg-round")
    assert (
        round_.locator(
            "[data-field=ttft], [data-field=latency], [data-field=tokens], [data-field=cost]"
        ).count()
        == 0
    )
    assert round_.locator(".badge.sim").count() == 0
    text = round_.inner_text()
    assert "sim-quick" not in text and "sim-slow" not in text
    assert " ms" not in text and "$" not in text
    assert all(page.locator(f".pg-col[data-position='{i}'] [data-field=text]").is_visible() for i in (0, 1))
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path=screenshot_path("arena-before-the-vote"), full_page=True)
    page.click("button[name=winner][value=a]")
    page.wait_for_selector("[data-revealed]")
    page.screenshot(path=screenshot_path("arena-after-the-vote"), full_page=True)
    # After the vote the permalink shows the figures.
    page.goto(f"{live_url}/playground/runs/{PlaygroundRun.objects.get().pk}/")
    assert page.locator(".pg-col [data-field=latency]").count() == 2
    assert "$" in page.inner_text(".pg-round")


def test_a_cancelled_column_shows_the_cost_the_call_log_bills(live_url, page):
    sim_model("sim-slow", options=SLOW)
    _open(page, live_url)
    _send(page, "Tell a very long story about the sea and the ships upon it", ["sim-slow"])
    page.wait_for_function(
        "(document.querySelector('.pg-col [data-field=text]')?.textContent || '').length > 0", timeout=10_000
    )
    page.click("[data-action=stop]")
    page.wait_for_selector(".pg-col[data-status=cancelled]")
    page.wait_for_function(
        "document.querySelector('.pg-col [data-field=cost]').textContent.startsWith('$')", timeout=10_000
    )
    column = PlaygroundColumn.objects.get()
    record = CallRecord.objects.get(trace_id=column.trace_id)
    assert record.status == "cancelled" and record.cost_usd
    assert page.inner_text(".pg-col [data-field=cost]") == f"{usd(record.cost_usd)} (partial: cancelled)"
    page.goto(f"{live_url}/playground/runs/{column.run_id}/")
    assert page.inner_text(".pg-col [data-field=cost]") == f"{usd(record.cost_usd)} (partial: cancelled)"
    assert page.inner_text(".pg-records tbody td.num >> nth=2") == usd(record.cost_usd)


def test_a_finished_runs_permalink_has_no_stop_button(live_url, page):
    sim_model("sim-alpha")
    _open(page, live_url)
    _send(page, "Permalink me", ["sim-alpha"])
    page.wait_for_function(ALL_FINISHED, timeout=10_000)
    page.goto(f"{live_url}{page.get_attribute('.pg-permalink', 'href')}")
    page.wait_for_selector(".pg-col[data-status=ok]")
    assert page.locator("[data-action=stop]").count() == 0


def test_the_model_picker_folds_to_chips_so_the_answers_start_above_the_fold(live_url, page):
    page.set_viewport_size({"width": 1440, "height": 900})
    for i in range(12):
        sim_model(f"sim-{i:02d}", capabilities=["chat", "code", "summarise"])
    _open(page, live_url)
    assert page.locator("[data-picker]").bounding_box()["height"] < 300
    _send(page, "Hello", ["sim-03", "sim-07"])
    assert page.inner_text("[data-chips]").split() == ["sim-03", "×", "sim-07", "×"]
    page.wait_for_function(ALL_FINISHED, timeout=10_000)
    assert page.evaluate("document.querySelector('[data-picker]').open") is False
    top = page.locator(".pg-col [data-field=text]").first.bounding_box()["y"]
    assert top + 40 < 900
    page.screenshot(path=screenshot_path("playground-picker-folded"))
    # A chip's × takes its model out of the choice.
    page.click("[data-unchip='sim-03']")
    assert not page.is_checked("input[name=models][value='sim-03']")
    assert page.inner_text("[data-chips]").split() == ["sim-07", "×"]
