"""Code: a fenced block in the asked language, reviews that find the bug, SQL."""

from __future__ import annotations

import re

import pytest

from tests.routing.providers.simulated.helpers import ask


@pytest.mark.parametrize(
    ("ask_for", "fence"),
    [
        ("Write a Python function that reverses a string.", "```python\n"),
        ("Write a JavaScript function that checks whether a number is prime.", "```javascript\n"),
        ("Write a function in Go that sums a list of numbers.", "```go\n"),
        ("Implement a Rust function that totals a slice.", "```rust\n"),
        ("Write a function that computes a factorial.", "```python\n"),
    ],
)
def test_a_code_request_gets_a_fenced_block_in_the_asked_language(ask_for, fence):
    text = ask(ask_for).text

    assert fence in text
    assert text.rstrip().endswith("```") or "```\n" in text


def test_the_python_it_writes_runs_and_is_right():
    text = ask("Write a Python function that computes the factorial of n.").text
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)
    namespace: dict = {}
    exec(compile(code, "<answer>", "exec"), namespace)  # our own generated text, in a test

    assert namespace["factorial"](5) == 120


def test_a_weak_model_writes_an_off_by_one():
    text = ask(
        "Write a Python function that computes the factorial of n.", skills={"code_generation": 0.0}
    ).text
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)
    namespace: dict = {}
    exec(compile(code, "<answer>", "exec"), namespace)

    assert namespace["factorial"](5) != 120


def test_a_review_finds_the_bug_and_gives_the_corrected_code():
    text = ask(
        "def add(a, b):\n    return a - b", system="You are a senior software engineer reviewing code."
    ).text

    assert "**Bug**" in text
    assert "```python\ndef add(a, b):\n    return a + b\n```" in text


def test_a_weak_reviewer_can_miss_the_bug():
    text = ask(
        "def add(a, b):\n    return a - b", system="Review this code.", skills={"code_generation": 0.0}
    ).text

    assert "no bugs" in text.lower()


def test_sql_reads_the_question_and_the_dialect():
    system = "You are a database expert. Generate optimized SQL for Azure SQL."
    text = ask("Top 10 customers by revenue last quarter, with their region.", system=system).text

    assert text.startswith("```sql\nSELECT TOP (10) c.customer_id, c.name, c.region,")
    assert "ORDER BY revenue DESC" in text and "DATEADD(quarter" in text


def test_weak_sql_sorts_the_wrong_way():
    text = ask("Top 5 products by sales. Write the SQL query.", skills={"code_generation": 0.0}).text

    assert "ORDER BY sales ASC" in text and "LIMIT 5" in text
