from decimal import Decimal

import pytest

from metrics.templatetags.metrics_format import usd


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        (Decimal("0"), "$0.00"),
        (Decimal("1234.5"), "$1,234.50"),
        (Decimal("0.0054"), "$0.0054"),
        (Decimal("0.0009"), "$0.00090"),
        (Decimal("0.0000122"), "$0.000012"),
        (Decimal("0.0000000123"), "$0.000000012"),  # the smallest the column keeps: 10 places
    ],
)
def test_small_costs_keep_two_significant_digits(value, shown):
    assert usd(value) == shown
