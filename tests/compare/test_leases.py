"""Leases a live worker renews: short slot and claim expiries, pushed back every heartbeat."""

import time

import pytest
from django.core.cache import cache
from django.utils import timezone

from compare import leases
from compare.models import CellStatus, CompareCell
from compare.slots import slot_acquire, slot_release
from tests.compare.conftest import make_run, simulated_model

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def renewal(settings):
    settings.COMPARE_WORKER_HEARTBEAT_MS = 100
    leases.renewal_start()
    yield
    leases.renewal_stop()


def test_without_renewal_a_slot_and_a_claim_take_the_whole_lease():
    assert not leases.renewing() and leases.lease_until() is None
    handle = slot_acquire("p", lease_s=60)
    assert handle is not None and handle not in leases._slots
    slot_release(handle)


def test_a_renewing_process_takes_short_leases(renewal):
    assert leases.renewing()
    until = leases.lease_until()
    assert until is not None and 0 < (until - timezone.now()).total_seconds() <= 0.4
    handle = slot_acquire("p", lease_s=60)
    assert handle is not None and leases._slots[handle] == pytest.approx(0.4)
    slot_release(handle)
    assert handle not in leases._slots and cache.get(handle.partition("|")[0]) is None


def test_the_heartbeat_pushes_back_the_claims_it_holds(renewal):
    simulated_model("sim-a")
    run = make_run(inputs=["a", "b"], candidates=["model:sim-a"])
    held, other = CompareCell.objects.filter(run=run).order_by("id")
    start = timezone.now()
    CompareCell.objects.filter(run=run).update(status=CellStatus.RUNNING, claimed_at=start, lease_until=start)
    leases.cell_hold(held.pk)
    deadline = time.monotonic() + 10
    while CompareCell.objects.get(pk=held.pk).lease_until <= start and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval of a bounded wait
    leases.cell_drop(held.pk)
    assert CompareCell.objects.get(pk=held.pk).lease_until > start
    assert CompareCell.objects.get(pk=other.pk).lease_until == start


def test_stopping_gives_back_the_slots_still_held(settings):
    settings.COMPARE_WORKER_HEARTBEAT_MS = 100
    leases.renewal_start()
    handle = slot_acquire("p", lease_s=60)
    assert handle is not None
    leases.renewal_stop()
    assert cache.get(handle.partition("|")[0]) is None and not leases.renewing()
