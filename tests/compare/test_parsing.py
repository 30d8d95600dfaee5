import pytest

from compare.parsing import PromptRow, PromptSetError, prompt_set_parse, upload_format, upload_text


def test_it_reads_one_prompt_per_line_skipping_blank_lines():
    rows = prompt_set_parse("first\n\n  second  \n", fmt="lines", max_rows=10)
    assert rows == [PromptRow(input="first"), PromptRow(input="second")]


def test_it_reads_csv_with_optional_columns_and_quoted_newlines():
    text = 'input,expected,task_type\n"two\nlines",4,math\nhello,,\n'
    rows = prompt_set_parse(text, fmt="csv", max_rows=10)
    assert rows == [PromptRow("two\nlines", "4", "math"), PromptRow("hello", "", "")]


def test_it_reads_jsonl_and_turns_a_numeric_expected_into_text():
    text = '{"input": "2+2?", "expected": 4}\n\n{"input": "hi", "task_type": "chat"}\n'
    rows = prompt_set_parse(text, fmt="jsonl", max_rows=10)
    assert rows == [PromptRow("2+2?", "4", ""), PromptRow("hi", "", "chat")]


def test_it_names_the_jsonl_line_that_is_not_json():
    with pytest.raises(PromptSetError, match=r"Line 2: not valid JSON"):
        prompt_set_parse('{"input": "ok"}\n{"input": "broken"\n', fmt="jsonl", max_rows=10)


def test_it_names_the_jsonl_line_without_an_input():
    with pytest.raises(PromptSetError, match=r"Line 3: 'input' is empty"):
        prompt_set_parse('{"input": "a"}\n{"input": "b"}\n{"expected": "c"}\n', fmt="jsonl", max_rows=10)


def test_it_rejects_unknown_fields_with_the_line():
    with pytest.raises(PromptSetError, match=r"Line 1: unknown field 'prompt'"):
        prompt_set_parse('{"prompt": "a"}', fmt="jsonl", max_rows=10)


def test_it_names_the_csv_row_with_the_wrong_number_of_fields():
    with pytest.raises(PromptSetError, match=r"Line 3: 3 fields where the header has 2"):
        prompt_set_parse("input,expected\na,b\nc,d,e\n", fmt="csv", max_rows=10)


def test_it_reports_a_csv_without_an_input_column():
    with pytest.raises(PromptSetError, match=r"Line 1: the CSV header needs an 'input' column"):
        prompt_set_parse("question,answer\na,b\n", fmt="csv", max_rows=10)


def test_it_reports_malformed_csv_quoting_with_the_line():
    with pytest.raises(PromptSetError, match=r"Line \d+: malformed CSV"):
        prompt_set_parse('input\n"unterminated\n', fmt="csv", max_rows=10)


@pytest.mark.parametrize("fmt,text", [("lines", "\n \n"), ("csv", "input\n"), ("jsonl", ""), ("csv", "")])
def test_an_empty_set_is_refused(fmt, text):
    with pytest.raises(PromptSetError, match="empty"):
        prompt_set_parse(text, fmt=fmt, max_rows=10)


def test_a_set_over_the_limit_is_refused_with_both_numbers():
    with pytest.raises(PromptSetError, match=r"has 4 prompts; the limit is 3"):
        prompt_set_parse("a\nb\nc\nd", fmt="lines", max_rows=3)


def test_uploads_are_recognised_by_extension_and_decoded_without_a_bom():
    assert upload_format("set.CSV") == "csv"
    assert upload_format("set.jsonl") == "jsonl"
    assert upload_text("\ufeffinput\nx\n".encode(), filename="a.csv") == "input\nx\n"
    with pytest.raises(PromptSetError, match="upload a .csv or .jsonl"):
        upload_format("set.xlsx")
    with pytest.raises(PromptSetError, match="not UTF-8"):
        upload_text(b"\xff\xfe\x00bad", filename="a.csv")
