from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from metrics.models import CallStatus
from metrics.selectors.records import (
    api_key_spend_recorded,
    trace_cost,
    trace_last,
    trace_records,
    trace_usage,
)
from tests.factories import CallRecordFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_trace_usage_sums_tokens_and_cost_and_is_unknown_when_a_used_call_has_no_price():
    CallRecordFactory(trace_id="t", input_tokens=10, output_tokens=5, cost_usd=Decimal("0.5"))
    CallRecordFactory(trace_id="t", status=CallStatus.ERROR, input_tokens=0, output_tokens=0, cost_usd=None)
    usage = trace_usage(trace_ids=["t"])
    assert (usage.calls, usage.ok, usage.input_tokens, usage.output_tokens) == (2, 1, 10, 5)
    assert usage.cost_usd == Decimal("0.5")  # the failure before any token bills nothing
    CallRecordFactory(trace_id="t", input_tokens=3, cost_usd=None)
    assert trace_usage(trace_ids=["t"]).cost_usd is None
    assert trace_usage(trace_ids=["nope"]) is None


def test_trace_reads_keep_to_their_traces_in_order():
    first = CallRecordFactory(trace_id="a", created_at=NOW, cost_usd=Decimal("1"))
    last = CallRecordFactory(trace_id="a", created_at=NOW + timedelta(seconds=1), status=CallStatus.ERROR)
    CallRecordFactory(trace_id="b", cost_usd=Decimal("7"))
    assert [r.pk for r in trace_records(trace_ids=["a"])] == [first.pk, last.pk]
    assert trace_last(trace_id="a") == last
    assert trace_last(trace_id="a", ok_only=True) == first
    assert trace_cost(trace_ids=["a"]) == Decimal("1")


def test_an_api_keys_recorded_spend_counts_its_window_only(db):
    from gateway.services import api_key_create

    key, _ = api_key_create(name="app")
    CallRecordFactory(api_key=key, cost_usd=Decimal("2"), created_at=NOW)
    CallRecordFactory(api_key=key, cost_usd=Decimal("3"), created_at=NOW - timedelta(days=2))
    assert api_key_spend_recorded(api_key_id=key.pk, since=NOW - timedelta(days=1)) == Decimal("2")
    assert api_key_spend_recorded(api_key_id=key.pk, since=NOW - timedelta(days=3), until=NOW) == Decimal("3")
