import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync

from gateway.errors import GatewayError
from gateway.keys import KeyInfo
from gateway.limits import limits_account, limits_admit, period_bounds
from gateway.models import BudgetAlert
from gateway.selectors import budget_alerts_active
from tests.factories import CallRecordFactory

pytestmark = pytest.mark.django_db

admit = async_to_sync(limits_admit)
account = async_to_sync(limits_account)

NOON = datetime(2026, 3, 14, 12, 0, 30, tzinfo=UTC)


def info_for(key) -> KeyInfo:
    return KeyInfo.from_model(key)


def spend(info: KeyInfo, amount: str, now: datetime, tokens: int = 0) -> None:
    admission = admit(info=info, now=now)
    account(info=info, admission=admission, tokens=tokens, cost_usd=Decimal(amount), now=now)


def test_periods_are_utc_days_and_months():
    assert period_bounds("day", NOON) == (
        datetime(2026, 3, 14, tzinfo=UTC),
        datetime(2026, 3, 15, tzinfo=UTC),
    )
    assert period_bounds("month", NOON) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )
    december = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert period_bounds("month", december)[1] == datetime(2027, 1, 1, tzinfo=UTC)


def test_it_refuses_the_request_over_the_rpm_limit_until_the_oldest_is_a_minute_old(make_key):
    key, _ = make_key("ci", rpm=3)
    info = info_for(key)
    for _ in range(3):
        admit(info=info, now=NOON)
    with pytest.raises(GatewayError) as refused:
        admit(info=info, now=NOON + timedelta(seconds=20))
    assert refused.value.status == 429
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.headers["retry-after"] == "40"  # when the oldest leaves the window
    admit(info=info, now=NOON + timedelta(minutes=1))  # the window slid past all three


def test_the_sliding_window_refuses_the_61st_request_across_a_minute_boundary(make_key):
    """60 requests in the last second of a minute and the 61st in the first second of the
    next: a fixed window admitted 120 here; the sliding one refuses until 60 s have passed."""
    key, _ = make_key("ci", rpm=60)
    info = info_for(key)
    late = datetime(2026, 3, 14, 12, 0, 59, 500_000, tzinfo=UTC)
    for _ in range(60):
        admit(info=info, now=late)
    for seconds in (1, 30, 59.9):
        with pytest.raises(GatewayError) as refused:
            admit(info=info, now=late + timedelta(seconds=seconds))
        assert refused.value.code == "rate_limit_exceeded"
    admit(info=info, now=late + timedelta(seconds=60))


def test_it_refuses_once_the_minute_used_its_tokens(make_key):
    key, _ = make_key("ci", tpm=100)
    info = info_for(key)
    spend(info, "0", NOON, tokens=60)
    spend(info, "0", NOON, tokens=60)
    with pytest.raises(GatewayError) as refused:
        admit(info=info, now=NOON)
    assert refused.value.code == "tokens_rate_limit_exceeded"
    admit(info=info, now=NOON + timedelta(minutes=1))


def test_settled_tokens_leave_the_minutes_count_when_they_leave_the_window(make_key):
    key, _ = make_key("ci", tpm=100)
    info = info_for(key)
    spend(info, "0", NOON, tokens=60)
    spend(info, "0", NOON + timedelta(seconds=30), tokens=45)
    with pytest.raises(GatewayError) as refused:  # 105 used
        admit(info=info, now=NOON + timedelta(seconds=45))
    assert refused.value.code == "tokens_rate_limit_exceeded"
    assert refused.value.headers["retry-after"] == "15"  # when the 60 leave the window
    spend(info, "0", NOON + timedelta(seconds=61), tokens=30)  # 45 + 30 used
    spend(info, "0", NOON + timedelta(seconds=62), tokens=30)  # 45 + 30 + 30
    with pytest.raises(GatewayError):
        admit(info=info, now=NOON + timedelta(seconds=63))
    admit(info=info, now=NOON + timedelta(seconds=91))  # the 45 left too: 60 used


def test_a_key_without_limits_is_never_refused(make_key):
    key, _ = make_key("free")
    info = info_for(key)
    admitted = []
    for _ in range(50):
        admission = admit(info=info, now=NOON)  # a refusal raises GatewayError (429)
        account(info=info, admission=admission, tokens=10_000, cost_usd=Decimal("100"), now=NOON)
        admitted.append(admission)
    assert len(admitted) == 50
    # Admitted because it has no limits, not because the counters' store was unreachable.
    assert all(a.checked and a.spent_usd is None for a in admitted)


def test_an_exhausted_budget_refuses_until_the_period_rolls_over(make_key):
    key, _ = make_key("ci", budget_usd=Decimal("1.00"), budget_period="day")
    info = info_for(key)
    spend(info, "0.60", NOON)
    spend(info, "0.45", NOON)
    with pytest.raises(GatewayError) as refused:
        admit(info=info, now=NOON)
    error = refused.value
    assert (error.status, error.code) == (429, "budget_exceeded")
    assert "1.0500 of 1.0000 USD" in error.message and "2026-03-15 00:00 UTC" in error.message
    assert int(error.headers["retry-after"]) == 12 * 3600 - 30
    next_day = datetime(2026, 3, 15, 0, 0, 1, tzinfo=UTC)
    admit(info=info, now=next_day)


def test_a_cold_counter_is_seeded_from_the_call_records(make_key):
    key, _ = make_key("ci", budget_usd=Decimal("1.00"), budget_period="month")
    CallRecordFactory(api_key=key, cost_usd=Decimal("0.70"), created_at=NOON - timedelta(days=1))
    CallRecordFactory(api_key=key, cost_usd=Decimal("0.40"), created_at=NOON - timedelta(hours=1))
    CallRecordFactory(api_key=key, cost_usd=Decimal("5"), created_at=datetime(2026, 2, 27, tzinfo=UTC))
    CallRecordFactory(api_key=None, cost_usd=Decimal("5"), created_at=NOON)
    with pytest.raises(GatewayError) as refused:
        admit(info=info_for(key), now=NOON)
    assert "1.1000 of 1.0000" in refused.value.message


def test_it_raises_one_alert_at_80_percent_and_logs_it(make_key, caplog):
    key, _ = make_key("ci", budget_usd=Decimal("10"), budget_period="month")
    info = info_for(key)
    spend(info, "7.00", NOON)
    assert not BudgetAlert.objects.exists()
    with caplog.at_level(logging.WARNING, logger="gateway"):
        spend(info, "1.50", NOON)
        spend(info, "0.10", NOON)
    alert = BudgetAlert.objects.get()
    assert (alert.threshold, alert.period, alert.period_start) == (
        80,
        "month",
        datetime(2026, 3, 1, tzinfo=UTC),
    )
    assert "reached 80% of its month budget" in caplog.text
    active = budget_alerts_active(now=NOON)
    assert active == [
        {
            "key_name": "ci",
            "key_prefix": key.prefix,
            "spent_usd": Decimal("8.6"),
            "budget_usd": Decimal("10.0000"),
            "period": "month",
            "percent": 86.0,
            "threshold": 80,
            "raised_at": alert.created_at,
        }
    ]


def test_it_raises_the_exhausted_alert_at_100_percent(make_key):
    key, _ = make_key("ci", budget_usd=Decimal("1"), budget_period="day")
    spend(info_for(key), "1.20", NOON)
    assert sorted(BudgetAlert.objects.values_list("threshold", flat=True)) == [80, 100]
    assert budget_alerts_active(now=NOON)[0]["threshold"] == 100


def test_alerts_from_a_past_period_are_not_active(make_key):
    key, _ = make_key("ci", budget_usd=Decimal("1"), budget_period="day")
    spend(info_for(key), "0.90", NOON)
    assert len(budget_alerts_active(now=NOON)) == 1
    assert budget_alerts_active(now=NOON + timedelta(days=1)) == []


def test_revoked_keys_have_no_active_alerts(make_key):
    from gateway.services import api_key_revoke

    key, _ = make_key("ci", budget_usd=Decimal("1"), budget_period="day")
    spend(info_for(key), "0.90", NOON)
    api_key_revoke(key=key)
    assert budget_alerts_active(now=NOON) == []


@pytest.mark.skipif(not __import__("os").environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_with_redis_the_counters_are_shared_through_redis(make_key):
    from django.core.cache import caches

    from gateway.limits.store import redis_url

    key, _ = make_key("ci", rpm=10, tpm=100)
    assert redis_url()
    spend(info_for(key), "0", NOON, tokens=7)
    raw = caches["default"]._cache.get_client(write=False)
    rpm_log = raw.zrange(caches["default"].make_key(f"gw:rpm:{key.pk}"), 0, -1)
    tpm_log = raw.zrange(caches["default"].make_key(f"gw:tpm:{key.pk}"), 0, -1)
    assert len(rpm_log) == 1
    assert [m.decode().split(":")[1] for m in tpm_log] == ["7"]


@pytest.mark.skipif(not __import__("os").environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_with_redis_a_tpm_log_without_its_running_sum_is_counted_whole(make_key):
    """A log written before the running sum existed (or whose sum was lost) is summed once."""
    from django.core.cache import caches

    key, _ = make_key("ci", tpm=100)
    info = info_for(key)
    spend(info, "0", NOON, tokens=60)
    spend(info, "0", NOON, tokens=45)
    raw = caches["default"]._cache.get_client(write=True)
    assert raw.delete(caches["default"].make_key(f"gw:tpm-sum:{key.pk}")) == 1
    with pytest.raises(GatewayError) as refused:  # 105 used
        admit(info=info, now=NOON)
    assert refused.value.code == "tokens_rate_limit_exceeded"
    assert int(raw.get(caches["default"].make_key(f"gw:tpm-sum:{key.pk}"))) == 105


def test_an_unreachable_redis_admits_unchecked_and_logs(make_key, settings, caplog):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }
    key, _ = make_key("ci", rpm=1, budget_usd=Decimal("1"))
    info = info_for(key)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            admission = admit(info=info, now=NOON)
            account(info=info, admission=admission, tokens=5, cost_usd=Decimal("5"), now=NOON)
    assert admission.checked is False
    # The outage is logged once, not once per request.
    assert [r.getMessage() for r in caplog.records].count(
        "shared cache (Redis) unavailable (rate limits and budget of key 'ci' unchecked: the cache is "
        "unavailable): degrading; retrying every 1s"
    ) == 1


@pytest.mark.skipif(not __import__("os").environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_with_redis_a_settlement_skipped_in_the_back_off_is_sent_before_the_next_admission(make_key):
    """A key's first request reserves the rest of its budget. Its settlement falls in the
    second after a Redis failure (the guard leaves Redis alone): kept, it goes out ahead of the
    next admission, which is then admitted instead of refused for the held budget."""
    from routing.cache_guard import cache_failed, cache_guard_reset

    key, _ = make_key("ci", budget_usd=Decimal("1.00"), budget_period="day")
    info = info_for(key)
    first = admit(info=info, now=NOON)
    cache_failed(what="a timeout, in the test")
    try:
        account(info=info, admission=first, tokens=5, cost_usd=Decimal("0.10"), now=NOON)
    finally:
        cache_guard_reset()  # the back-off is over: Redis answers again
    second = admit(info=info, now=NOON)
    assert second.checked and second.spent_usd == Decimal("0.10")
