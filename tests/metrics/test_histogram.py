import random

import pytest

from metrics.histogram import (
    RELATIVE_ERROR_BOUND,
    bucket_index,
    hist_add,
    hist_decode,
    hist_encode,
    hist_merge,
    hist_percentiles,
)
from tests.metrics.conftest import exact_percentile


def test_the_stated_bound_is_under_five_percent():
    assert RELATIVE_ERROR_BOUND < 0.05


def test_encoding_round_trips():
    hist = {0: 3, 1: 1, 57: 123456, 150: 2}
    assert hist_decode(hist_encode(hist)) == hist
    assert hist_decode(b"") == {}


@pytest.mark.parametrize("seed", range(5))
def test_percentiles_are_within_the_bound_of_exact_nearest_rank(seed):
    rng = random.Random(seed)
    values = [
        rng.lognormvariate(rng.uniform(2, 9), rng.uniform(0.2, 2)) + 1 for _ in range(rng.randint(1, 3000))
    ]
    hist: dict[int, int] = {}
    for v in values:
        hist_add(hist, v)
    for p in (50, 90, 95, 99, 100):
        estimate = hist_percentiles(hist, [p])[0]
        exact = exact_percentile(values, p)
        assert abs(estimate - exact) / exact <= RELATIVE_ERROR_BOUND + 1e-9


def test_merging_equals_adding_everything_to_one():
    a, b, both = {}, {}, {}
    for v in (1.5, 20, 300, 300, 4000):
        hist_add(a, v)
        hist_add(both, v)
    for v in (0.2, 20, 99999):
        hist_add(b, v)
        hist_add(both, v)
    assert hist_merge(dict(a), b) == both


def test_an_empty_histogram_has_no_percentiles():
    assert hist_percentiles({}, [50, 95]) == [None, None]


def test_values_below_one_ms_and_huge_values_have_their_own_buckets():
    assert bucket_index(0) == 0
    assert bucket_index(0.99) == 0
    assert bucket_index(1.0) == 1
    assert bucket_index(10**12) == 150
