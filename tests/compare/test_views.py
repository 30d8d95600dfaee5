"""Compare pages: each view's success, wrong method, anonymous refused, htmx fragment."""

import csv
import io
import json
import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from compare.assertions import AssertionSpec
from compare.models import CellStatus, CompareCell, CompareRun, Drill, RunStatus
from compare.services import cells as cell_service
from tests.compare.conftest import make_run, simulated_model
from tests.factories import ModelConfigFactory, UserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def models(db):
    # Two voices: the simulated provider words its answers by model id, so outputs differ.
    return simulated_model("sim-a", provider="sim-1"), simulated_model("sim-b", provider="sim-2")


def finished_run(models, **kwargs):
    run = make_run(
        inputs=kwargs.pop("inputs", ["What is the capital of France?", "2+2?"]),
        candidates=["model:sim-a", "model:sim-b"],
        **kwargs,
    )
    for cell in CompareCell.objects.filter(run=run):
        cell_service.cell_run(cell_id=cell.pk)
    run.refresh_from_db()
    return run


class TestIndex:
    def test_it_lists_runs_and_offers_the_form(self, member_client, models):
        run = make_run(inputs=["a"], candidates=["model:sim-a"])
        response = member_client.get(reverse("compare:index"))
        assert response.status_code == 200
        body = response.content.decode()
        assert 'name="candidates" value="model:sim-a"' in body
        assert f'href="/compare/runs/{run.pk}/"' in body

    def test_the_form_does_not_offer_embedding_models(self, member_client, models):
        ModelConfigFactory(name="vectors", capabilities=["embedding"], embedding_dimensions=8)
        body = member_client.get(reverse("compare:index")).content.decode()
        assert 'value="model:sim-a"' in body
        assert 'value="model:vectors"' not in body

    def test_it_counts_prompts_and_cells_per_run(self, member_client, models, django_assert_max_num_queries):
        finished_run(models, inputs=["a", "b", "c"])
        finished_run(models, inputs=["d"])
        with django_assert_max_num_queries(12):
            body = member_client.get(reverse("compare:index")).content.decode()
        assert '<td class="num">3</td>\n      <td class="num">6</td>' in body
        assert '<td class="num">1</td>\n      <td class="num">2</td>' in body

    def test_it_refuses_post(self, member_client):
        assert member_client.post(reverse("compare:index")).status_code == 405

    def test_it_sends_anonymous_users_to_log_in(self, db):
        response = Client().get(reverse("compare:index"))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    def test_htmx_gets_only_the_runs_table(self, member_client, models):
        response = member_client.get(reverse("compare:index"), **HTMX)
        body = response.content.decode()
        assert "<table" in body and "<html" not in body and "cmp-form" not in body


class TestCreate:
    def post(self, client, htmx=False, **data):
        payload = {"prompts_format": "lines", "max_tokens": "64", **data}
        return client.post(reverse("compare:create"), payload, **(HTMX if htmx else {}))

    def test_it_creates_the_run_and_queues_every_cell(
        self, member_client, models, eager_celery, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = self.post(
                member_client, prompts_text="one\ntwo", candidates=["model:sim-a", "model:sim-b"], name="mine"
            )
        run = CompareRun.objects.get()
        assert response.status_code == 302 and response["Location"] == f"/compare/runs/{run.pk}/"
        assert run.name == "mine" and run.cells.count() == 4
        assert run.status == RunStatus.DONE

    def test_htmx_gets_a_client_redirect(
        self, member_client, models, eager_celery, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = self.post(member_client, htmx=True, prompts_text="one", candidates=["model:sim-a"])
        assert response.status_code == 200
        assert response["HX-Redirect"] == f"/compare/runs/{CompareRun.objects.get().pk}/"

    def test_it_takes_an_uploaded_jsonl_file(
        self, member_client, models, eager_celery, django_capture_on_commit_callbacks
    ):
        upload = SimpleUploadedFile(
            "set.jsonl", b'{"input": "a", "expected": "x"}\n{"input": "b", "task_type": "t"}\n'
        )
        with django_capture_on_commit_callbacks(execute=True):
            response = self.post(member_client, prompts_file=upload, candidates=["model:sim-a"])
        assert response.status_code == 302
        prompts = list(CompareRun.objects.get().prompts.values_list("input", "expected", "task_type"))
        assert prompts == [("a", "x", ""), ("b", "", "t")]

    @pytest.mark.parametrize(
        "data,message",
        [
            (
                {"prompts_format": "csv", "prompts_text": "input,expected\na,b\nc,d,e\n"},
                "Line 3: 3 fields where the header has 2",
            ),
            (
                {"prompts_format": "jsonl", "prompts_text": '{"input": "a"}\n{oops}\n'},
                "Line 2: not valid JSON",
            ),
            ({"prompts_text": "  \n"}, "The prompt set is empty"),
            ({"prompts_text": "a", "candidates": ["model:ghost"]}, "Unknown model &#x27;ghost&#x27;"),
            (
                {
                    "prompts_text": "a",
                    "assertion_kind": ["regex"],
                    "assertion_value": ["[a-"],
                    "assertion_model": [""],
                },
                "Assertion 1: the regex &#x27;[a-&#x27; does not compile",
            ),
        ],
    )
    def test_bad_input_gets_a_clear_message_and_nothing_is_queued(self, member_client, models, data, message):
        data.setdefault("candidates", ["model:sim-a"])
        response = self.post(member_client, **data)
        assert response.status_code == 400
        assert message in response.content.decode()
        assert CompareRun.objects.count() == 0 and CompareCell.objects.count() == 0

    def test_a_malformed_upload_names_the_file_and_row(self, member_client, models):
        upload = SimpleUploadedFile("set.csv", b'input\nok\n"broken\n')
        response = self.post(member_client, prompts_file=upload, candidates=["model:sim-a"], htmx=True)
        assert response.status_code == 400
        body = response.content.decode()
        assert "set.csv: Line" in body and "malformed CSV" in body and "<html" not in body
        assert CompareRun.objects.count() == 0

    def test_a_set_larger_than_the_maximum_is_refused(self, member_client, models, settings):
        settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "COMPARE_MAX_PROMPTS": 3}
        response = self.post(member_client, prompts_text="a\nb\nc\nd", candidates=["model:sim-a"])
        assert response.status_code == 400
        assert "has 4 prompts; the limit is 3" in response.content.decode()
        assert CompareRun.objects.count() == 0

    def test_it_refuses_get(self, member_client):
        assert member_client.get(reverse("compare:create")).status_code == 405

    def test_it_refuses_anonymous_users(self, db, models):
        response = Client().post(
            reverse("compare:create"), {"prompts_text": "a", "candidates": ["model:sim-a"]}
        )
        assert response.status_code == 302
        assert CompareRun.objects.count() == 0


class TestEstimate:
    def test_htmx_gets_the_estimate_fragment(self, member_client, models):
        response = member_client.post(
            reverse("compare:estimate"),
            {
                "prompts_format": "lines",
                "prompts_text": "x" * 400,
                "max_tokens": "100",
                "candidates": ["model:sim-a"],
            },
            **HTMX,
        )
        body = response.content.decode()
        assert response.status_code == 200 and "<html" not in body
        # 104 tokens in at $0.001/1K + 100 out at $0.002/1K = $0.000304.
        assert "at most $0.0003" in body and "data-estimate" in body
        assert CompareRun.objects.count() == 0

    def test_without_htmx_it_renders_the_page_with_the_form_kept(self, member_client, models):
        response = member_client.post(
            reverse("compare:estimate"),
            {
                "prompts_format": "lines",
                "prompts_text": "keep me",
                "max_tokens": "10",
                "candidates": ["model:sim-a"],
            },
        )
        body = response.content.decode()
        assert "<html" in body and "keep me" in body and 'value="model:sim-a" checked' in body

    def test_it_refuses_get(self, member_client):
        assert member_client.get(reverse("compare:estimate")).status_code == 405


class TestRunPage:
    def test_it_shows_the_matrix_with_totals_and_escaped_output(
        self, member_client, models, django_assert_max_num_queries
    ):
        run = finished_run(models, inputs=["<script>alert(1)</script>"])
        with django_assert_max_num_queries(12):
            response = member_client.get(reverse("compare:run", args=[run.pk]))
        body = response.content.decode()
        assert response.status_code == 200
        assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
        cell = CompareCell.objects.filter(run=run).first()
        assert f'href="/calls/{cell.call_record_id}/"' in body
        assert "mean" in body and "p95" in body

    def test_query_count_does_not_grow_with_the_matrix(
        self, member_client, models, django_assert_max_num_queries
    ):
        run = finished_run(models, inputs=[f"question {i}" for i in range(15)])
        with django_assert_max_num_queries(12):
            member_client.get(reverse("compare:run", args=[run.pk]))

    def test_only_rows_where_candidates_differ_can_be_shown(self, member_client, models):
        run = finished_run(models, inputs=["same", "different"])
        cells = {
            (c.prompt.input, c.candidate.target): c
            for c in CompareCell.objects.filter(run=run).select_related("prompt", "candidate")
        }
        CompareCell.objects.filter(pk__in=[cells[("same", "sim-a")].pk, cells[("same", "sim-b")].pk]).update(
            output="agreed"
        )
        CompareCell.objects.filter(pk=cells[("different", "sim-a")].pk).update(output="yes")
        CompareCell.objects.filter(pk=cells[("different", "sim-b")].pk).update(output="no")
        body = member_client.get(reverse("compare:run", args=[run.pk]) + "?differ=1", **HTMX).content.decode()
        assert (
            "different" in body
            and ">same<" not in body
            and "1 row where every candidate agreed hidden" in body
        )

    def test_an_assertion_without_an_expected_value_shows_as_not_applicable_and_counts_neither_way(
        self, member_client, models
    ):
        run = finished_run(models, expected=["", ""], assertions=[AssertionSpec("equals")])
        CompareCell.objects.filter(run=run, prompt__position=0, candidate__position=0).update(
            checks=[{"kind": "equals", "label": "equals 'x'", "passed": True, "detail": ""}], passed=True
        )
        body = member_client.get(reverse("compare:run", args=[run.pk]), **HTMX).content.decode()
        assert body.count('class="badge na"') == 3 and body.count("n/a equals expected") == 3
        totals = body.split('class="cmp-totals"')[1].split("</tr>")[0]
        first, second = (" ".join(re.sub(r"<[^>]+>", " ", t).split()) for t in totals.split("</th>")[1:3])
        assert first.endswith("pass 100% (1/1) · 1 n/a")
        assert second.endswith("pass — · 2 n/a")

    def test_htmx_gets_only_the_matrix(self, member_client, models):
        run = finished_run(models)
        body = member_client.get(reverse("compare:run", args=[run.pk]), **HTMX).content.decode()
        assert "cmp-matrix" in body and "<html" not in body and "cmp-progress" not in body

    def test_it_refuses_post_and_anonymous_users(self, member_client, models):
        run = finished_run(models)
        assert member_client.post(reverse("compare:run", args=[run.pk])).status_code == 405
        assert Client().get(reverse("compare:run", args=[run.pk])).status_code == 302

    def test_an_unknown_run_is_404(self, member_client, db):
        assert member_client.get(reverse("compare:run", args=[999])).status_code == 404


class TestProgress:
    def test_the_polled_fragment_costs_a_few_queries_whatever_the_run_size(
        self, member_client, models, django_assert_max_num_queries
    ):
        run = make_run(inputs=[f"q{i}" for i in range(40)], candidates=["model:sim-a", "model:sim-b"])
        with django_assert_max_num_queries(5):
            member_client.get(reverse("compare:progress", args=[run.pk]), **HTMX)

    def test_it_polls_while_running_and_stops_when_done(self, member_client, models):
        run = make_run(inputs=["a", "b"], candidates=["model:sim-a"])
        body = member_client.get(reverse("compare:progress", args=[run.pk]), **HTMX).content.decode()
        assert 'hx-trigger="every 2s"' in body and "0 / 2 cells" in body and "<html" not in body
        for cell in CompareCell.objects.filter(run=run):
            cell_service.cell_run(cell_id=cell.pk)
        response = member_client.get(
            reverse("compare:progress", args=[run.pk]), HTTP_HX_REQUEST="true", HTTP_X_COMPARE_WAS_RUNNING="1"
        )
        body = response.content.decode()
        assert "every 2s" not in body and "2 / 2 cells" in body
        assert response["HX-Trigger"] == "compare-run-finished"

    def test_it_refuses_post_and_anonymous_users(self, member_client, models):
        run = make_run(inputs=["a"], candidates=["model:sim-a"])
        assert member_client.post(reverse("compare:progress", args=[run.pk])).status_code == 405
        assert Client().get(reverse("compare:progress", args=[run.pk])).status_code == 302


class TestCancel:
    def test_its_creator_cancels_the_waiting_cells(self, member_client, member_user, models):
        run = make_run(inputs=["a", "b"], candidates=["model:sim-a"], user=member_user)
        response = member_client.post(reverse("compare:cancel", args=[run.pk]))
        assert response.status_code == 302
        run.refresh_from_db()
        assert run.status == RunStatus.CANCELLED
        assert set(run.cells.values_list("status", flat=True)) == {CellStatus.CANCELLED}

    def test_staff_may_cancel_anyones_run(self, staff_client, member_user, models):
        run = make_run(inputs=["a"], candidates=["model:sim-a"], user=member_user)
        assert staff_client.post(reverse("compare:cancel", args=[run.pk])).status_code == 302
        run.refresh_from_db()
        assert run.status == RunStatus.CANCELLED

    def test_another_member_may_not_cancel_it(self, member_client, models):
        other = UserFactory(username="eve")
        run = make_run(inputs=["a"], candidates=["model:sim-a"], user=other)
        assert member_client.post(reverse("compare:cancel", args=[run.pk])).status_code == 403
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING

    def test_htmx_gets_the_progress_fragment(self, member_client, member_user, models):
        run = make_run(inputs=["a"], candidates=["model:sim-a"], user=member_user)
        body = member_client.post(reverse("compare:cancel", args=[run.pk]), **HTMX).content.decode()
        assert "Cancelled" in body and "<html" not in body and "every 2s" not in body

    def test_it_refuses_get_and_anonymous_users(self, member_client, member_user, models):
        run = make_run(inputs=["a"], candidates=["model:sim-a"], user=member_user)
        assert member_client.get(reverse("compare:cancel", args=[run.pk])).status_code == 405
        assert Client().post(reverse("compare:cancel", args=[run.pk])).status_code == 302
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING


class TestExport:
    def test_csv_cells_cannot_be_read_as_spreadsheet_formulas(self, member_client, models):
        run = finished_run(models)
        CompareCell.objects.filter(run=run).update(output='=HYPERLINK("http://evil")')
        body = member_client.get(reverse("compare:export", args=[run.pk, "csv"])).content.decode()
        assert "'=HYPERLINK" in body and ',"=HYPERLINK' not in body

    @pytest.mark.parametrize("output", ["\tcmd", "\r=1+1", "+SUM(A1)", "-2+3", "@A1"])
    def test_csv_cells_starting_like_a_formula_stay_text(self, member_client, models, output):
        run = finished_run(models)
        CompareCell.objects.filter(run=run).update(output=output)
        body = member_client.get(reverse("compare:export", args=[run.pk, "csv"])).content.decode()
        rows = list(csv.DictReader(io.StringIO(body)))
        assert rows and {row["output"] for row in rows if row["status"] == "done"} == {"'" + output}

    def test_csv_has_one_row_per_cell(self, member_client, models):
        run = finished_run(models)
        response = member_client.get(reverse("compare:export", args=[run.pk, "csv"]))
        assert response["Content-Type"].startswith("text/csv")
        lines = response.content.decode().strip().splitlines()
        assert lines[0].startswith("prompt,input,expected,task_type,candidate,status,model,output")
        assert len([line for line in lines[1:] if ",done," in line]) == 4

    def test_csv_latency_is_rounded_to_a_tenth_of_a_millisecond(self, member_client, models):
        run = finished_run(models)
        CompareCell.objects.filter(run=run).update(latency_ms=1624.9628199999506)
        body = member_client.get(reverse("compare:export", args=[run.pk, "csv"])).content.decode()
        rows = list(csv.DictReader(io.StringIO(body)))
        assert {r["latency_ms"] for r in rows} == {"1625.0"}

    def test_json_has_rows_candidates_and_totals(self, member_client, models):
        run = finished_run(models)
        data = json.loads(member_client.get(reverse("compare:export", args=[run.pk, "json"])).content)
        assert [c["label"] for c in data["candidates"]] == ["sim-a", "sim-b"]
        assert len(data["rows"]) == 2 and set(data["rows"][0]["cells"]) == {"sim-a", "sim-b"}
        assert Decimal(data["run"]["spent_usd"]) == run.spent_usd

    def test_an_assertion_that_did_not_apply_is_exported_as_not_applicable(self, member_client, models):
        run = finished_run(models, expected=["Paris", ""], assertions=[AssertionSpec("contains")])
        CompareCell.objects.filter(run=run, prompt__position=0).update(
            checks=[{"kind": "contains", "label": "contains expected", "passed": True, "detail": ""}],
            passed=True,
        )
        rows = list(
            csv.DictReader(
                io.StringIO(
                    member_client.get(reverse("compare:export", args=[run.pk, "csv"])).content.decode()
                )
            )
        )
        assert [(r["prompt"], r["passed"], r["verdict"]) for r in rows] == [
            ("1", "True", "pass"),
            ("1", "True", "pass"),
            ("2", "", "not_applicable"),
            ("2", "", "not_applicable"),
        ]
        data = json.loads(member_client.get(reverse("compare:export", args=[run.pk, "json"])).content)
        cell = data["rows"][1]["cells"]["sim-a"]
        assert cell["verdict"] == "not_applicable" and cell["passed"] is None
        assert [(c["result"], c["passed"]) for c in cell["checks"]] == [("not_applicable", None)]
        assert data["candidates"][0]["totals"]["not_applicable"] == 1
        assert data["rows"][0]["cells"]["sim-a"]["checks"][0]["result"] == "pass"

    def test_an_unknown_format_is_not_found(self, member_client, models):
        run = finished_run(models)
        assert member_client.get(reverse("compare:export", args=[run.pk, "xlsx"])).status_code == 404

    def test_it_refuses_post_and_anonymous_users(self, member_client, models):
        run = finished_run(models)
        assert member_client.post(reverse("compare:export", args=[run.pk, "csv"])).status_code == 405
        assert Client().get(reverse("compare:export", args=[run.pk, "json"])).status_code == 302


class TestVote:
    def test_a_vote_between_two_cells_feeds_the_arena_ratings(self, member_client, member_user, models):
        from playground.models import Vote

        run = finished_run(models)
        a, b = CompareCell.objects.filter(run=run, prompt__position=0).order_by("candidate__position")
        response = member_client.post(
            reverse("compare:vote", args=[run.pk]), {"cell_a": a.pk, "cell_b": b.pk, "winner": "b"}, **HTMX
        )
        assert response.status_code == 200 and "Vote recorded" in response.content.decode()
        vote = Vote.objects.get()
        assert (vote.model_a, vote.model_b, vote.winner, vote.source) == ("sim-a", "sim-b", "b", "compare")
        assert vote.user == member_user and vote.prompt == a.prompt.input

    def test_thirty_identical_posts_count_as_one_vote(self, member_client, models):
        from playground.models import Vote

        run = finished_run(models)
        a, b = CompareCell.objects.filter(run=run, prompt__position=0).order_by("candidate__position")
        for _ in range(30):
            response = member_client.post(
                reverse("compare:vote", args=[run.pk]),
                {"cell_a": a.pk, "cell_b": b.pk, "winner": "b"},
                **HTMX,
            )
            assert response.status_code == 200
        assert Vote.objects.count() == 1

    def test_a_changed_vote_replaces_the_earlier_one_in_either_order(self, member_client, models):
        from playground.models import Vote
        from playground.selectors import leaderboard

        run = finished_run(models)
        a, b = CompareCell.objects.filter(run=run, prompt__position=0).order_by("candidate__position")
        url = reverse("compare:vote", args=[run.pk])
        member_client.post(url, {"cell_a": a.pk, "cell_b": b.pk, "winner": "b"}, **HTMX)
        member_client.post(url, {"cell_a": b.pk, "cell_b": a.pk, "winner": "b"}, **HTMX)  # now sim-a wins
        vote = Vote.objects.get()
        assert (vote.model_a, vote.model_b, vote.winner) == ("sim-b", "sim-a", "b")
        board = leaderboard()
        assert board.models == ["sim-a", "sim-b"] and board.total_votes == 1

    def test_other_voters_and_other_pairs_still_count(self, member_client, models):
        from playground.models import Vote

        run = finished_run(models)
        row0 = CompareCell.objects.filter(run=run, prompt__position=0).order_by("candidate__position")
        row1 = CompareCell.objects.filter(run=run, prompt__position=1).order_by("candidate__position")
        url = reverse("compare:vote", args=[run.pk])
        for a, b in (row0, row1):
            member_client.post(url, {"cell_a": a.pk, "cell_b": b.pk, "winner": "a"}, **HTMX)
        other = Client()
        other.force_login(UserFactory())
        other.post(url, {"cell_a": row0[0].pk, "cell_b": row0[1].pk, "winner": "a"}, **HTMX)
        assert Vote.objects.count() == 3
        assert Vote.objects.values("user").distinct().count() == 2

    def test_stuffed_votes_do_not_move_quality_routing(self, member_client, models, settings):
        from routing import orchestrator
        from routing.engine.stats import stats_invalidate
        from routing.models import ModelConfig

        settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RATING_MIN_VOTES": 5}
        ModelConfig.objects.filter(name="sim-a").update(quality_rank=1)
        ModelConfig.objects.filter(name="sim-b").update(quality_rank=2)
        run = finished_run(models)
        stats_invalidate()
        assert orchestrator.select_model([], optimize_for="quality") == "sim-a"
        a, b = CompareCell.objects.filter(run=run, prompt__position=0).order_by("candidate__position")
        for _ in range(30):
            member_client.post(
                reverse("compare:vote", args=[run.pk]),
                {"cell_a": a.pk, "cell_b": b.pk, "winner": "b"},
                **HTMX,
            )
        stats_invalidate()
        assert orchestrator.select_model([], optimize_for="quality") == "sim-a"

    def test_cells_of_different_rows_cannot_be_compared(self, member_client, models):
        from playground.models import Vote

        run = finished_run(models)
        a = CompareCell.objects.get(run=run, prompt__position=0, candidate__position=0)
        b = CompareCell.objects.get(run=run, prompt__position=1, candidate__position=1)
        response = member_client.post(
            reverse("compare:vote", args=[run.pk]), {"cell_a": a.pk, "cell_b": b.pk, "winner": "a"}
        )
        assert response.status_code == 302
        assert Vote.objects.count() == 0

    @pytest.mark.parametrize("cell_a", ["abc", "99999999999999999999999", "-3", ""])
    def test_a_cell_id_that_is_not_one_gets_a_clear_message(self, member_client, models, cell_a):
        from playground.models import Vote

        run = finished_run(models)
        b = CompareCell.objects.filter(run=run).first()
        response = member_client.post(
            reverse("compare:vote", args=[run.pk]), {"cell_a": cell_a, "cell_b": b.pk, "winner": "a"}, **HTMX
        )
        assert response.status_code == 400
        assert "Pick two different cells of this run." in response.content.decode()
        assert Vote.objects.count() == 0

    def test_it_refuses_get_and_anonymous_users(self, member_client, models):
        run = finished_run(models)
        assert member_client.get(reverse("compare:vote", args=[run.pk])).status_code == 405
        assert Client().post(reverse("compare:vote", args=[run.pk]), {"winner": "a"}).status_code == 302


class TestDrillPages:
    def test_the_list_shows_drills_and_the_form(self, staff_client, seed_default_chain):
        drill = Drill.objects.create(target_kind="chain", target="default", faults=[], requests=3, prompt="p")
        response = staff_client.get(reverse("compare:drills"))
        body = response.content.decode()
        assert response.status_code == 200
        assert 'value="chain:default"' in body and f'href="/compare/drills/{drill.pk}/"' in body

    def test_the_list_query_count_does_not_grow_with_drills(
        self, staff_client, staff_user, seed_default_chain, django_assert_max_num_queries
    ):
        for _ in range(8):
            Drill.objects.create(
                target_kind="chain",
                target="default",
                faults=[],
                requests=3,
                prompt="p",
                created_by=staff_user,
            )
        with django_assert_max_num_queries(10):
            assert staff_client.get(reverse("compare:drills")).status_code == 200

    def test_a_judge_whose_provider_has_no_key_is_refused(self, member_client, models, fake_provider):
        fake_provider.model(
            "keyless-judge", provider=fake_provider.provider(name="nokey", api_key_env="UNSET_JUDGE_KEY")
        )
        response = member_client.post(
            reverse("compare:create"),
            {
                "prompts_format": "lines",
                "prompts_text": "a",
                "max_tokens": "8",
                "candidates": ["model:sim-a"],
                "assertion_kind": ["judge"],
                "assertion_value": ["is right"],
                "assertion_model": ["keyless-judge"],
            },
        )
        assert response.status_code == 400
        assert "Judge: Model keyless-judge: needs key: set UNSET_JUDGE_KEY" in response.content.decode()
        assert CompareRun.objects.count() == 0

    def test_htmx_gets_only_the_list(self, staff_client, seed_default_chain):
        body = staff_client.get(reverse("compare:drills"), **HTMX).content.decode()
        assert "<table" in body and "<html" not in body and "drill-form" not in body

    def test_staff_launch_a_drill_that_runs_on_the_queue(
        self, staff_client, seed_default_chain, eager_celery, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(
                reverse("compare:drill_create"),
                {
                    "target": "chain:default",
                    "requests": "3",
                    "concurrency": "2",
                    "fault_model": ["gpt-4o", ""],
                    "fault_kind": ["server_error", "rate_limit"],
                    "fault_rate": ["1", "1"],
                },
            )
        drill = Drill.objects.get()
        assert response.status_code == 302 and response["Location"] == f"/compare/drills/{drill.pk}/"
        assert drill.status == "done" and drill.report["served_by"] == {"claude-3.5-sonnet": 3}
        page = staff_client.get(reverse("compare:drill", args=[drill.pk])).content.decode()
        assert "100%" in page and "claude-3.5-sonnet" in page

    def test_bad_drill_input_is_refused_with_a_message(self, staff_client, seed_default_chain):
        response = staff_client.post(
            reverse("compare:drill_create"),
            {
                "target": "chain:default",
                "requests": "3",
                "concurrency": "2",
                "fault_model": ["ghost"],
                "fault_kind": ["server_error"],
                "fault_rate": ["1"],
            },
            **HTMX,
        )
        assert response.status_code == 400
        assert "Unknown model &#x27;ghost&#x27;" in response.content.decode()
        assert Drill.objects.count() == 0

    def test_members_cannot_launch_drills(self, member_client, seed_default_chain):
        response = member_client.post(
            reverse("compare:drill_create"),
            {
                "target": "chain:default",
                "requests": "1",
                "concurrency": "1",
                "fault_model": ["gpt-4o"],
                "fault_kind": ["server_error"],
                "fault_rate": ["1"],
            },
        )
        assert response.status_code == 302 and Drill.objects.count() == 0

    def test_drill_views_refuse_wrong_methods_and_anonymous_users(self, staff_client, seed_default_chain):
        drill = Drill.objects.create(target_kind="chain", target="default", faults=[], requests=3, prompt="p")
        assert staff_client.post(reverse("compare:drills")).status_code == 405
        assert staff_client.get(reverse("compare:drill_create")).status_code == 405
        assert staff_client.post(reverse("compare:drill", args=[drill.pk])).status_code == 405
        assert Client().get(reverse("compare:drill", args=[drill.pk])).status_code == 302
        assert Client().get(reverse("compare:drills")).status_code == 302

    def test_a_running_drill_polls_and_htmx_gets_the_report_fragment(self, staff_client, seed_default_chain):
        drill = Drill.objects.create(target_kind="chain", target="default", faults=[], requests=3, prompt="p")
        body = staff_client.get(reverse("compare:drill", args=[drill.pk]), **HTMX).content.decode()
        assert 'hx-trigger="every 2s"' in body and "<html" not in body


def test_an_estimate_without_htmx_keeps_the_uploaded_rows_in_the_text_box(member_client, models):
    upload = SimpleUploadedFile("set.csv", b"input,expected\nWhat is 2+2?,4\n")
    response = member_client.post(
        reverse("compare:estimate"),
        {"prompts_format": "lines", "max_tokens": "8", "candidates": ["model:sim-a"], "prompts_file": upload},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "{&quot;input&quot;: &quot;What is 2+2?&quot;, &quot;expected&quot;: &quot;4&quot;}" in body
    assert '<option value="jsonl" selected>' in body


class TestLiveCells:
    def test_the_progress_fragment_brings_the_cells_finished_since_the_last_poll(self, member_client, models):
        run = make_run(inputs=["a", "b"], candidates=["model:sim-a"], user=None)
        url = reverse("compare:progress", args=[run.pk])
        first = member_client.get(url, **HTMX).content.decode()
        since = re.search(r'"since": "([^"]+)"', first).group(1)
        assert "hx-swap-oob" not in member_client.get(url, {"since": since}, **HTMX).content.decode()
        done = CompareCell.objects.filter(run=run).order_by("id").first()
        cell_service.cell_run(cell_id=done.pk)
        body = member_client.get(url, {"since": since}, **HTMX).content.decode()
        assert f'<td id="cmp-cell-{done.pk}" hx-swap-oob="true"' in body and 'data-status="done"' in body
        assert body.count("hx-swap-oob") == 1 and "<html" not in body

    def test_a_since_that_is_no_time_brings_no_cells(self, member_client, models):
        run = make_run(inputs=["a"], candidates=["model:sim-a"], user=None)
        cell_service.cell_run(cell_id=CompareCell.objects.get(run=run).pk)
        for since in ("yesterday", "2026-01-01T00:00:00", "9" * 40):
            response = member_client.get(reverse("compare:progress", args=[run.pk]), {"since": since}, **HTMX)
            assert response.status_code == 200 and "hx-swap-oob" not in response.content.decode()

    def test_the_page_gives_each_cell_an_id_to_be_swapped_by(self, member_client, models):
        run = make_run(inputs=["a"], candidates=["model:sim-a", "model:sim-b"], user=None)
        body = member_client.get(reverse("compare:run", args=[run.pk])).content.decode()
        for cell in CompareCell.objects.filter(run=run):
            assert f'id="cmp-cell-{cell.pk}"' in body
        assert 'hx-vals=\'{"since": "' in body

    def test_the_progress_fragment_refuses_post_and_anonymous_users(self, member_client, models):
        run = make_run(inputs=["a"], candidates=["model:sim-a"], user=None)
        assert member_client.post(reverse("compare:progress", args=[run.pk])).status_code == 405
        assert Client().get(reverse("compare:progress", args=[run.pk])).status_code == 302


class TestDrillProgress:
    def test_a_running_drill_shows_requests_done_errors_and_time_left(self, staff_client, seed_default_chain):
        from datetime import timedelta

        from django.utils import timezone

        drill = Drill.objects.create(
            target_kind="chain",
            target="default",
            faults=[],
            requests=10,
            prompt="p",
            status="running",
            started_at=timezone.now() - timedelta(seconds=8),
            report={"progress": {"done": 4, "total": 10, "errors": 1, "phase": "drill"}},
        )
        body = staff_client.get(reverse("compare:drill", args=[drill.pk]), **HTMX).content.decode()
        assert "4 / 10 requests done" in body and "1 error so far" in body
        left = int(re.search(r"about (\d+) s left", body).group(1))
        assert 11 <= left <= 13  # 8 s for 4 requests: 12 s for the 6 left
        assert "<html" not in body

    def test_a_drill_no_worker_has_picked_up_says_so(self, staff_client, seed_default_chain):
        drill = Drill.objects.create(target_kind="chain", target="default", faults=[], requests=3, prompt="p")
        body = staff_client.get(reverse("compare:drill", args=[drill.pk])).content.decode()
        assert "waiting for a worker" in body
