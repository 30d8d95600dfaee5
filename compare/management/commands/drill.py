"""`python manage.py drill`: run a fault drill in this process and print its report (for CI)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compare.services.drills import (
    DEFAULT_PROMPT,
    FAULT_KINDS,
    DrillInputError,
    drill_create,
    drill_run,
    fault_parse,
)


class Command(BaseCommand):
    help = (
        "Send N requests through a fallback chain or route with chosen models failing, and report "
        "success rate, paths, added latency and breaker openings. Exits 1 when the success rate is "
        "below --min-success. Example: drill --chain default --fail gpt-4o:server_error:1.0 --requests 50"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--chain", help="Fallback chain name.")
        target.add_argument("--route", help="Task route (task_type).")
        parser.add_argument(
            "--fail",
            action="append",
            default=[],
            metavar="MODEL:KIND[:RATE]",
            help=f"A failing model (repeatable). KIND: {', '.join(FAULT_KINDS)}; RATE 0-1, default 1.",
        )
        parser.add_argument("--requests", type=int, default=20)
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--prompt", default=DEFAULT_PROMPT)
        parser.add_argument("--stream", action="store_true", help="Stream answers (stream cuts need it).")
        parser.add_argument(
            "--baseline",
            action="store_true",
            help="First send the same requests without faults (doubles calls).",
        )
        parser.add_argument(
            "--min-success", type=float, default=1.0, help="Exit 1 below this success rate (0-1, default 1)."
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0.0 <= options["min_success"] <= 1.0:
            raise CommandError("--min-success must be between 0 and 1.")
        try:
            faults = [fault_parse(text) for text in options["fail"]]
            drill = drill_create(
                user=None,
                target_kind="chain" if options["chain"] else "route",
                target=options["chain"] or options["route"],
                faults=faults,
                requests=options["requests"],
                concurrency=options["concurrency"],
                prompt=options["prompt"],
                stream=options["stream"],
                baseline=options["baseline"],
                origin="cli",
            )
        except DrillInputError as exc:
            raise CommandError(str(exc)) from exc
        finished = drill_run(drill_id=drill.pk)
        if finished is None or finished.status != "done":
            raise CommandError(f"The drill failed: {finished.error if finished else 'it vanished'}")
        drill = finished
        report = drill.report
        if options["json"]:
            self.stdout.write(json.dumps({"drill_id": drill.pk, **report}, indent=2, default=str))
        else:
            self._print(drill.pk, report)
        if report["success_rate"] < options["min_success"]:
            raise CommandError(
                f"Success rate {report['success_rate']:.1%} is below --min-success {options['min_success']:.1%}.",
                returncode=1,
            )

    def _print(self, drill_id: int, report: dict[str, Any]) -> None:
        w = self.stdout.write
        w(
            f"Drill #{drill_id}: {report['ok']}/{report['requests']} requests answered ({report['success_rate']:.1%})"
        )
        w("Served by: " + (", ".join(f"{m} {n}" for m, n in report["served_by"].items()) or "nobody"))
        lat, added = report["latency_ms"], report["added_latency_ms"]
        if lat["p50"] is not None:
            w(f"Latency: p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms")
        if added["mean"] is not None:
            w(f"Added latency: mean {added['mean']:.0f} ms, p95 {added['p95']:.0f} ms")
        base = report.get("baseline")
        if base and base["latency_ms"]["p50"] is not None and base["added_ms"]["p50"] is not None:
            w(
                f"Without faults: p50 {base['latency_ms']['p50']:.0f} ms; the drill added "
                f"{base['added_ms']['p50']:+.0f} ms at p50, {base['added_ms']['p95']:+.0f} ms at p95"
            )
        opened = report["breakers"]["opened"]
        w("Breakers opened: " + (", ".join(o["model"] for o in opened) or "none"))
        skipped = report.get("never_tried", {})
        if any(skipped.values()):
            w(
                "Faulted models skipped (circuit open, no key or disabled): "
                + ", ".join(f"{m} {n}" for m, n in skipped.items() if n)
            )
        w("Paths:")
        for path, n in report["path_counts"].items():
            w(f"  {n:5d}  {path}")
        w(f"Call records: {report['records']['total']} ({report['records']['ok']} ok)")
