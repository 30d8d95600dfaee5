"""Compare runs (a prompt set × candidates, one cell per pair, run on Celery) and fault drills.

A cell is the unit of work: one Celery task per cell takes its id, claims it with a
conditional UPDATE and calls the engine under the cell's own trace id, so a redelivered
task can find a finished call instead of paying for it again (see compare.services.cells).
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models


def new_trace_id() -> str:
    return uuid.uuid4().hex


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"
    CAPPED = "capped", "Stopped at spend cap"
    FAILED = "failed", "Failed"


FINISHED_RUN_STATUSES = {RunStatus.DONE, RunStatus.CANCELLED, RunStatus.CAPPED, RunStatus.FAILED}


class CandidateKind(models.TextChoices):
    MODEL = "model", "Model"
    ROUTE = "route", "Task route"
    PROMPT = "prompt", "Prompt version of a route"


class CellStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    SKIPPED = "skipped", "Skipped (spend cap)"


OPEN_CELL_STATUSES = (CellStatus.PENDING, CellStatus.RUNNING)


class CheckResult(models.TextChoices):
    """How an assertion came out on a cell; for a cell, over all its assertions."""

    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    # equals/contains "expected" on a row without an expected value: neither pass nor fail.
    NOT_APPLICABLE = "not_applicable", "n/a"


class CompareRun(models.Model):
    name = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="compare_runs"
    )
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    # [{"kind": "equals"|"contains"|"regex"|"json"|"judge", "value": str, "model": str}]
    assertions = models.JSONField(default=list, blank=True)
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(default=512)
    estimated_cost_usd = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    # The estimate could not price every candidate (a model with no known price).
    estimate_incomplete = models.BooleanField(default=False)
    spend_cap_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    # What finished cells cost, and what in-flight cells reserved against the cap.
    spent_usd = models.DecimalField(max_digits=16, decimal_places=10, default=Decimal("0"))
    reserved_usd = models.DecimalField(max_digits=16, decimal_places=10, default=Decimal("0"))
    queue = models.CharField(max_length=100, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"Run {self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_RUN_STATUSES


class ComparePrompt(models.Model):
    run = models.ForeignKey(CompareRun, on_delete=models.CASCADE, related_name="prompts")
    position = models.PositiveIntegerField()
    input = models.TextField()
    expected = models.TextField(blank=True, default="")
    task_type = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="compare_prompt_position")]

    def __str__(self) -> str:
        return f"#{self.position + 1} {self.input[:40]}"


class CompareCandidate(models.Model):
    run = models.ForeignKey(CompareRun, on_delete=models.CASCADE, related_name="candidates")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=CandidateKind.choices)
    # The model name, the route's task type, or the route's task type for a prompt version.
    target = models.CharField(max_length=100)
    prompt_version = models.ForeignKey(
        "routing.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    label = models.CharField(max_length=200)
    # Name of the concurrency pool its calls count against (usually the provider's name).
    pool = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="compare_candidate_position")]

    def __str__(self) -> str:
        return self.label


class CompareCell(models.Model):
    run = models.ForeignKey(CompareRun, on_delete=models.CASCADE, related_name="cells")
    prompt = models.ForeignKey(ComparePrompt, on_delete=models.CASCADE, related_name="cells")
    candidate = models.ForeignKey(CompareCandidate, on_delete=models.CASCADE, related_name="cells")
    status = models.CharField(max_length=16, choices=CellStatus.choices, default=CellStatus.PENDING)
    # Fixed when the cell is made: every attempt at this cell joins this trace, which is how a
    # redelivered task finds a call that already succeeded instead of paying for it twice.
    trace_id = models.CharField(max_length=32, default=new_trace_id, db_index=True)
    judge_trace_id = models.CharField(max_length=32, default=new_trace_id)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Running: when the claim lapses unless its worker renews it (None: claimed_at + the whole
    # lease). Waiting: when the message a worker deferred is due back (None: in the queue).
    lease_until = models.DateTimeField(null=True, blank=True)
    # Which message may run the cell: each (re)queueing takes the next number, and a message
    # carrying an older one is a superseded duplicate that does nothing.
    dispatch = models.PositiveIntegerField(default=0)
    claims = models.PositiveIntegerField(default=0, help_text="How many times a worker claimed the cell.")
    retries = models.PositiveIntegerField(default=0, help_text="Retries after transient errors.")
    worker = models.CharField(max_length=200, blank=True, default="", help_text="Who claimed it last.")
    reserved_usd = models.DecimalField(max_digits=16, decimal_places=10, default=Decimal("0"))
    output = models.TextField(blank=True, default="")
    model_name = models.CharField(max_length=100, blank=True, default="", help_text="Who answered.")
    call_record_id = models.BigIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=10, null=True, blank=True)
    # [{"kind", "label", "passed": bool | None (did not apply), "detail": str}]
    checks = models.JSONField(default=list, blank=True)
    # Every assertion that applied passed; None: no assertion applied (or none, or not done).
    passed = models.BooleanField(null=True, blank=True)
    reused = models.BooleanField(default=False, help_text="The answer came from an earlier, finished call.")
    error = models.TextField(blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "prompt__position", "candidate__position"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "candidate"], name="compare_cell_unique"),
        ]
        indexes = [models.Index(fields=["run", "status"], name="compare_cell_run_status")]

    def __str__(self) -> str:
        return f"cell {self.pk} ({self.status})"

    @property
    def verdict(self) -> str:
        """A CheckResult over the cell's assertions; "" when it has none (or is not done)."""
        if self.passed is not None:
            return CheckResult.PASS if self.passed else CheckResult.FAIL
        return CheckResult.NOT_APPLICABLE if self.checks else ""


class DrillStatus(models.TextChoices):
    PENDING = "pending", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class DrillTargetKind(models.TextChoices):
    CHAIN = "chain", "Fallback chain"
    ROUTE = "route", "Task route"


class Drill(models.Model):
    """A fault drill: N requests through a chain or route with some models made to fail."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    origin = models.CharField(max_length=16, default="web", help_text="web or cli")
    target_kind = models.CharField(max_length=16, choices=DrillTargetKind.choices)
    target = models.CharField(max_length=100)
    # [{"model": str, "kind": "rate_limit"|"server_error"|"timeout"|"stream_cut", "rate": float}]
    faults = models.JSONField(default=list)
    requests = models.PositiveIntegerField()
    concurrency = models.PositiveIntegerField(default=4)
    prompt = models.TextField()
    stream = models.BooleanField(default=False)
    baseline = models.BooleanField(
        default=False, help_text="First send the same requests without faults, to compare latency."
    )
    status = models.CharField(max_length=16, choices=DrillStatus.choices, default=DrillStatus.PENDING)
    # Filled when done: figures, per-request paths, breaker openings (compare.services.drills).
    report = models.JSONField(default=dict, blank=True)
    success_rate = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"drill {self.pk} on {self.target_kind} {self.target}"
