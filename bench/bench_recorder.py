"""The recorder's hot path: CPU per `call_record_enqueue`, with the record spool on and off.

    python -m bench recorder [--quick]

Enqueues records like the engine's (every field set; a short prompt and answer, as in the
gateway benchmark, then 4 KB of text each) in rounds, spool on and off alternating so drift
hits both alike, with the background writer writing them as in production (flush interval
0.1 s). Reports the calling thread's CPU per record (`time.thread_time`: the writer's work
is not counted), median and range over the rounds, and the difference the spool makes.

Runs on a scratch SQLite database in a temporary directory (the spool in it too).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bench._support import setup_django


def _fields(text: str) -> dict[str, Any]:
    return {
        "trace_id": "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e",
        "model_name": "bench-model",
        "status": "ok",
        "attempt": 1,
        "source": "gateway",
        "role": "primary",
        "route_id": None,
        "task_type": "",
        "chain_name": "",
        "chain_step": None,
        "prompt_version_id": None,
        "model_id": None,
        "provider_name": "bench-fake",
        "provider_kind": "openai",
        "provider_model_id": "bench-model",
        "api_key_id": None,
        "error_class": "",
        "http_status": None,
        "error_message": "",
        "latency_ms": 1.234,
        "ttft_ms": None,
        "stream": False,
        "input_tokens": 12,
        "output_tokens": 5,
        "cached_tokens": 0,
        "input_price_per_1k": Decimal("0.001"),
        "output_price_per_1k": Decimal("0.002"),
        "price_source": "override",
        "cost_usd": Decimal("0.0000220000"),
        "request_text": text,
        "response_text": "Hello, benchmark!",
        "simulated": False,
        "created_at": datetime.now(UTC),
    }


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    rounds = 6 if quick else 20
    per_round = 1000 if quick else 5000
    setup_django(tempfile.mkdtemp(prefix="bench-recorder-"))

    from django.conf import settings

    from metrics.services import call_record_enqueue, call_records_flush

    settings.ORCHESTRATOR["RECORD_FLUSH_INTERVAL_S"] = 0.1
    print(f"{rounds} rounds of {per_round} records per side; CPU of the enqueueing thread per record")
    for label, text in (("short text", "user: Say hello to the benchmark."), ("4 KB text", "x" * 4096)):
        fields = _fields(text)
        per_record: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(rounds):
            for spool in (True, False) if round_ % 2 else (False, True):
                settings.ORCHESTRATOR["RECORD_SPOOL"] = spool
                call_records_flush()  # start each round with nothing queued
                started = time.thread_time()
                for _ in range(per_round):
                    call_record_enqueue(**fields)
                per_record[spool].append((time.thread_time() - started) / per_round * 1e6)
        call_records_flush()
        on, off = per_record[True], per_record[False]
        print(
            f"{label:>10}: spool off {statistics.median(off):6.1f} µs ({min(off):.1f}–{max(off):.1f}), "
            f"on {statistics.median(on):6.1f} µs ({min(on):.1f}–{max(on):.1f}); "
            f"the spool adds {statistics.median(on) - statistics.median(off):.1f} µs per record"
        )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
