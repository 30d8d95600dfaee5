import hashlib
import re

import pytest

from gateway.models import ApiKey

pytestmark = pytest.mark.django_db


def test_creating_a_key_in_the_admin_shows_it_once(staff_client):
    response = staff_client.post(
        "/admin/gateway/apikey/add/",
        {
            "name": "billing",
            "budget_period": "month",
            "allowed": "[]",
            "budget_usd": "5",
            "rpm": "",
            "tpm": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    raw = re.search(r"ork-[A-Za-z0-9_-]{43}", page).group(0)
    key = ApiKey.objects.get(name="billing")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(key.prefix)
    assert key.created_by is not None
    # Shown in a code box with a copy button that names it.
    assert f'<code class="secret" id="new-api-key">{raw}</code>' in page
    assert 'data-copy="new-api-key"' in page
    # Never again: the change page and the list show the prefix only.
    change = staff_client.get(f"/admin/gateway/apikey/{key.pk}/change/").content.decode()
    listing = staff_client.get("/admin/gateway/apikey/").content.decode()
    assert raw not in change and raw not in listing
    assert key.prefix in listing


def test_the_revoke_action_revokes_the_selected_keys(staff_client, make_key):
    key, _ = make_key("old")
    other, _ = make_key("kept")
    response = staff_client.post(
        "/admin/gateway/apikey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert response.status_code == 200
    key.refresh_from_db()
    other.refresh_from_db()
    assert key.revoked_at is not None and other.revoked_at is None
    assert "Revoked 1 key" in response.content.decode()


def test_members_cannot_see_keys(member_client, make_key):
    make_key("secret")
    response = member_client.get("/admin/gateway/apikey/")
    assert response.status_code == 302
