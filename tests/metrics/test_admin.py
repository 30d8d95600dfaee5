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
