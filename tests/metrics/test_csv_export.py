"""The one CSV writer: cells a spreadsheet would evaluate are written as text."""

import csv
import io

import pytest

from metrics.csv_export import csv_cell_safe, csv_response


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\tx", "\rx"])
def test_a_formula_like_cell_gets_a_leading_quote(value):
    assert csv_cell_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "a=b", "", -1, 2.5, None])
def test_other_cells_are_left_alone(value):
    assert csv_cell_safe(value) == value


def test_the_response_is_an_attachment_with_every_row_made_safe():
    response = csv_response(filename="x.csv", header=["a", "b"], rows=[["=x", -3], ["ok", "\ty"]])

    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'
    assert list(csv.reader(io.StringIO(response.content.decode()))) == [
        ["a", "b"],
        ["'=x", "-3"],
        ["ok", "'\ty"],
    ]
