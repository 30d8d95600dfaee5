"""The `simulated` kind: deterministic, in-process, labelled simulated, able to fail on purpose."""

from __future__ import annotations

import json

import pytest

from routing.errors import ModelPermanentError, RequestInvalidError, TransientError
from routing.providers.base import ProviderSpec, SamplingOptions, StreamEnd
from routing.providers.simulated import reset_random
from tests.routing.providers.conftest import complete, complete_error, request, stream, stream_error

INSTANT = {"latency_ms_mean": 0, "latency_ms_jitter": 0}


def sim(name: str = "sim", **options) -> ProviderSpec:
    reset_random(name)
    return ProviderSpec(name=name, kind="simulated", options={**INSTANT, **options})


def test_the_same_prompt_gets_the_same_answer():
    spec = sim()

    first = complete(spec, request("sim-a"))
    second = complete(spec, request("sim-a"))

    assert first.text == second.text
    assert first.text


def test_a_different_prompt_gets_a_different_answer():
    spec = sim()
    other = [{"role": "user", "content": "Explain recursion with an example."}]

    assert complete(spec, request("sim-a")).text != complete(spec, request("sim-a", messages=other)).text


def test_models_on_one_provider_answer_an_open_question_in_their_own_words():
    # The old answers were templates, word for word the same across models (issue 15).
    spec = sim()
    open_question = [{"role": "user", "content": "Explain how a connection pool works."}]

    answers = {complete(spec, request(m, messages=open_question)).text for m in ("sim-a", "sim-b", "sim-c")}

    assert len(answers) > 1


def test_a_persona_changes_the_wording_of_a_model():
    open_question = [{"role": "user", "content": "Explain how a connection pool works."}]

    plain = complete(sim(), request("sim-a", messages=open_question)).text
    others = {complete(sim(persona=p), request("sim-a", messages=open_question)).text for p in "abcd"}

    assert others - {plain}


def test_per_model_options_override_the_providers():
    spec = sim(skills={"math": 0.0}, models={"sim-good": {"skills": {"math": 1.0}}})
    question = [{"role": "user", "content": "What is 17 * 23?"}]

    assert complete(spec, request("sim-good", messages=question)).text == "17 * 23 = 391"
    assert complete(spec, request("sim-bad", messages=question)).text != "17 * 23 = 391"


def test_answers_are_labelled_simulated_with_word_counted_usage():
    completion = complete(sim(), request("sim-a"))

    assert completion.simulated
    assert completion.finish_reason == "stop"
    assert completion.usage.output_tokens == len(completion.text.split())
    assert completion.usage.input_tokens >= len(
        ["Answer", "briefly.", "What", "is", "the", "capital", "of", "France?"]
    )


def test_max_tokens_truncates_the_answer_and_says_so():
    completion = complete(sim(), request("sim-a", max_tokens=3))
    *_, end = stream(sim(), request("sim-a", max_tokens=3))

    assert len(completion.text.split()) == 3
    assert completion.usage.output_tokens == 3
    assert completion.finish_reason == "length"  # a cut answer must not look complete
    assert isinstance(end, StreamEnd) and end.finish_reason == "length"
    assert complete(sim(), request("sim-a")).finish_reason == "stop"


def test_it_streams_the_same_text_word_by_word():
    spec = sim()

    items = stream(spec, request("sim-a"))

    *deltas, end = items
    assert "".join(deltas) == complete(spec, request("sim-a")).text  # type: ignore[arg-type]
    assert isinstance(end, StreamEnd) and end.simulated
    assert end.usage.output_tokens == len(deltas)


def test_a_json_prompt_gets_json():
    messages = [{"role": "user", "content": "Reply in JSON with an answer field."}]

    assert "answer" in json.loads(complete(sim(), request("sim-a", messages=messages)).text)


@pytest.mark.parametrize(
    ("kind", "error_class", "status"),
    [
        ("transient", TransientError, 503),
        ("rate_limit", TransientError, 429),
        ("server_error", TransientError, 500),
        ("model_permanent", ModelPermanentError, 404),
        ("request_invalid", RequestInvalidError, 400),
    ],
)
def test_each_failure_kind_raises_its_error_class(kind, error_class, status):
    error = complete_error(sim(failure_rate=1, failure_kinds=[kind]), request("sim-a"))

    assert type(error) is error_class
    assert error.http_status == status
    assert error.latency_ms is not None


def test_a_simulated_rate_limit_says_when_to_retry():
    error = complete_error(sim(failure_rate=1, failure_kinds=["rate_limit"]), request("sim-a"))

    assert error.retry_after_s == 1.0


def test_a_hang_lets_the_transport_timeout_fire():
    spec = sim(failure_rate=1, failure_kinds=["hang"])

    error = complete_error(spec, request("sim-a", timeout_s=0.2))
    _, stream_failure = stream_error(spec, request("sim-a", timeout_s=0.2))

    assert type(error) is TransientError and error.timeout
    assert type(stream_failure) is TransientError and stream_failure.timeout


def test_a_stream_cut_stops_after_n_tokens_with_the_partial_text():
    spec = sim(failure_rate=1, failure_kinds=["stream_cut"], stream_cut_after_tokens=4)

    items, error = stream_error(spec, request("sim-a"))

    assert len(items) == 4
    assert type(error) is TransientError
    assert error.partial_text == "".join(items)
    assert error.output_tokens_so_far == 4


def test_a_stream_cut_on_a_plain_call_is_a_transient_failure():
    spec = sim(failure_rate=1, failure_kinds=["stream_cut"])

    assert type(complete_error(spec, request("sim-a"))) is TransientError


def test_a_zero_failure_rate_never_fails():
    spec = sim(failure_rate=0, failure_kinds=["server_error"])

    assert all(complete(spec, request("sim-a")).text for _ in range(20))


def test_a_partial_failure_rate_replays_the_same_sequence():
    def outcomes() -> list[bool]:
        spec = sim("flaky", failure_rate=0.5, failure_kinds=["server_error"])
        results = []
        for _ in range(30):
            try:
                complete(spec, request("sim-a"))
                results.append(True)
            except TransientError:
                results.append(False)
        return results

    first = outcomes()

    assert first == outcomes()
    assert True in first and False in first


def test_invalid_options_make_the_model_fail_permanently_naming_the_option():
    error = complete_error(
        ProviderSpec(name="bad", kind="simulated", options={"latency_ms_mean": -1}), request()
    )

    assert type(error) is ModelPermanentError
    assert "latency_ms_mean" in str(error)


# -- Sampling options ---------------------------------------------------------------------------


def test_stop_cuts_the_answer_before_the_first_stop_sequence():
    spec = sim()
    full = complete(spec, request("sim-a")).text
    first_period = full.index(".")

    cut = complete(spec, request("sim-a", sampling=SamplingOptions(stop=("zzz", "."))))

    assert (cut.text, cut.finish_reason) == (full[:first_period], "stop")
    assert cut.usage.output_tokens == len(cut.text.split())


def test_a_stream_stops_at_the_stop_sequence_too():
    spec = sim()
    full = complete(spec, request("sim-a")).text

    items = stream(spec, request("sim-a", sampling=SamplingOptions(stop=("\n",))))

    assert "".join(i for i in items if isinstance(i, str)) == full.split("\n")[0]
    assert items[-1].finish_reason == "stop"


def test_json_object_gets_a_json_object_whatever_the_prompt():
    completion = complete(
        sim(), request("sim-a", sampling=SamplingOptions(response_format={"type": "json_object"}))
    )

    assert isinstance(json.loads(completion.text), dict)


def test_json_schema_gets_an_object_shaped_by_the_schema():
    schema = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["billing", "support"]},
            "score": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "reason": {"type": "string"},
        },
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}}

    completion = complete(sim(), request("sim-a", sampling=SamplingOptions(response_format=response_format)))

    answer = json.loads(completion.text)
    assert set(answer) == {"label", "score", "tags", "reason"}
    assert answer["label"] in ("billing", "support")
    assert isinstance(answer["score"], float)  # any number: the values now mean something (issue 15)
    assert (type(answer["tags"]), type(answer["reason"])) == (list, str)


def test_a_response_format_schema_with_keywords_of_the_wrong_type_still_gets_json():
    schema = {
        "type": "object",
        "properties": {
            "score": {"type": "number", "minimum": "low", "maximum": {"x": 1}},
            "tags": {"type": "array", "minItems": "2", "items": {"type": "string", "maxLength": []}},
        },
        "required": "score",
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "odd", "schema": schema}}

    completion = complete(sim(), request("sim-a", sampling=SamplingOptions(response_format=response_format)))

    answer = json.loads(completion.text)
    assert (type(answer["score"]), type(answer["tags"])) in ((float, list), (int, list))
