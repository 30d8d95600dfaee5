import pytest

from tests.factories import CallRecordFactory

pytestmark = pytest.mark.django_db


def test_staff_can_list_and_search_call_records_but_not_edit_them(staff_client):
    record = CallRecordFactory(model_name="findme", error_message="HTTP 429")
    CallRecordFactory(model_name="other")
    listing = staff_client.get("/admin/metrics/callrecord/?q=findme")
    assert listing.status_code == 200
    assert b"findme" in listing.content and b"other" not in listing.content
    assert staff_client.get(f"/admin/metrics/callrecord/{record.pk}/change/").status_code == 200  # view only
    assert staff_client.get("/admin/metrics/callrecord/add/").status_code == 403
    response = staff_client.post(f"/admin/metrics/callrecord/{record.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403


def test_members_cannot_open_the_call_record_admin(member_client):
    assert member_client.get("/admin/metrics/callrecord/").status_code == 302


def test_the_call_record_list_shows_rounded_figures_and_a_short_trace_linking_the_call(staff_client):
    record = CallRecordFactory(latency_ms=1624.9628199999506, input_tokens=1200, output_tokens=34)
    content = staff_client.get("/admin/metrics/callrecord/").content.decode()
    assert "1,625 ms" in content and "1624.96" not in content
    assert "1,200 / 34" in content
    assert f'href="/calls/{record.pk}/"' in content and f">{record.trace_id[:8]}…<" in content
