from metrics.models import CallRecord
from routing import orchestrator
from tests.fake_provider import Reply
from tests.routing.engine.conftest import simulated_model


def test_it_completes_with_a_simulated_model_and_records_the_call():
    simulated_model("sim-a", capabilities=["chat"])
    result = orchestrator.complete([{"role": "user", "content": "hello"}], capabilities=["chat"])
    assert result.model == "sim-a"
    assert result.text
    records = list(CallRecord.objects.all())
    assert len(records) == 1
    assert records[0].trace_id == result.trace_id
    assert records[0].simulated


def test_it_completes_through_the_openai_sdk(fake_provider):
    fake_provider.model("gpt-x", capabilities=["chat"])
    fake_provider.script("gpt-x", Reply.rate_limit(retry_after=0), Reply.ok("fine"))
    result = orchestrator.complete([{"role": "user", "content": "hello"}], model="gpt-x")
    assert result.text == "fine"
    assert [a.status for a in result.attempts] == ["error", "ok"]
    assert CallRecord.objects.count() == 2


def test_it_streams(fake_provider):
    from asgiref.sync import async_to_sync

    fake_provider.model("gpt-s")
    fake_provider.script("gpt-s", Reply.ok("one two three"))

    async def collect():
        return [e async for e in orchestrator.astream([{"role": "user", "content": "hi"}], model="gpt-s")]

    events = async_to_sync(collect)()
    assert [e.kind for e in events][0] == "attempt"
    assert events[-1].kind == "done"
    assert "".join(e.text for e in events if e.kind == "delta") == "one two three"
    orchestrator.records_flush()
    assert CallRecord.objects.get().stream
