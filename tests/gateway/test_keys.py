import hashlib
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command

from gateway.keys import KeyInfo, key_lookup
from gateway.models import ApiKey
from gateway.services import api_key_revoke

pytestmark = pytest.mark.django_db

lookup = async_to_sync(key_lookup)


def test_it_stores_only_the_hash_and_a_prefix(make_key):
    key, raw = make_key("ci")
    assert raw.startswith("ork-") and len(raw) > 40
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {stored.key_hash, stored.prefix, stored.name}
    assert raw.startswith(stored.prefix) and len(stored.prefix) == 12


def test_it_finds_an_active_key_by_its_raw_value(make_key):
    key, raw = make_key("ci", rpm=5, allowed=["route:code_review"])
    info = lookup(raw)
    assert info is not None
    assert (info.id, info.rpm, info.allowed) == (key.pk, 5, frozenset({"route:code_review"}))


def test_it_rejects_unknown_and_malformed_keys(make_key):
    make_key("ci")
    assert lookup("ork-" + "x" * 43) is None
    assert lookup("sk-not-ours") is None
    assert lookup("") is None


def test_a_revoked_key_stops_working_at_once_in_this_process(make_key):
    key, raw = make_key("ci")
    assert lookup(raw) is not None  # now cached
    api_key_revoke(key=key)
    assert lookup(raw) is None
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_allow_lists_match_names_and_kind_wildcards():
    info = KeyInfo(1, "k", "ork-", None, "month", None, None, frozenset({"route:*", "gpt-4o"}))
    assert info.allows("route:code_review")
    assert info.allows("gpt-4o")
    assert not info.allows("gpt-4o-mini")
    assert not info.allows("chain:default")
    open_key = KeyInfo(1, "k", "ork-", None, "month", None, None, frozenset())
    assert open_key.allows("anything")


def test_the_command_prints_the_key_once_and_stores_its_limits():
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_key",
        "billing",
        "--budget-usd",
        "12.5",
        "--budget-period",
        "day",
        "--rpm",
        "60",
        "--tpm",
        "1000",
        "--allow",
        "route:code_review, chain:default",
        stdout=out,
        stderr=err,
    )
    raw = out.getvalue().strip()
    key = ApiKey.objects.get(name="billing")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert (str(key.budget_usd), key.budget_period, key.rpm, key.tpm) == ("12.5000", "day", 60, 1000)
    assert key.allowed == ["route:code_review", "chain:default"]
    assert "shown only once" in err.getvalue()


@pytest.mark.parametrize(
    "args",
    [["--budget-usd", "lots"], ["--budget-usd", "-1"], ["--rpm", "0"], ["--budget-period", "week"]],
)
def test_the_command_refuses_bad_limits(args):
    with pytest.raises((CommandError, SystemExit)):
        call_command("create_api_key", "bad", *args, stdout=StringIO(), stderr=StringIO())
    assert not ApiKey.objects.filter(name="bad").exists()


def test_using_a_key_records_its_last_use_at_most_once_a_minute(client, make_key):
    key, raw = make_key("ci", allowed=["route:x"])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    client.get("/v1/models", **headers)
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    client.get("/v1/models", **headers)
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
