"""Playground runs (what was asked, of whom, and what came back) and arena votes."""

import uuid

from django.conf import settings
from django.db import models


def new_trace_id() -> str:
    return uuid.uuid4().hex


class RunMode(models.TextChoices):
    MODELS = "models", "Models side by side"
    ROUTE = "route", "Task route"
    CHAIN = "chain", "Fallback chain"
    CONSENSUS = "consensus", "Consensus"
    ARENA = "arena", "Blind arena"


class Aggregator(models.TextChoices):
    MAJORITY = "majority", "Majority vote"
    JUDGE = "judge", "Judge model"
    SIMILARITY = "similarity", "Most similar to the others"
    FASTEST = "fastest", "Fastest success"


class ColumnStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    STREAMING = "streaming", "Streaming"
    OK = "ok", "Done"
    ERROR = "error", "Error"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = {ColumnStatus.OK, ColumnStatus.ERROR, ColumnStatus.CANCELLED}


class PlaygroundRun(models.Model):
    """One send from the playground (or one arena round): the prompt, the settings, the columns."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="playground_runs"
    )
    mode = models.CharField(max_length=16, choices=RunMode.choices)
    system_prompt = models.TextField(blank=True, default="")
    prompt = models.TextField()
    # An image attached to the prompt, as a data URI (checked by routing.messages, size-capped).
    image = models.TextField(blank=True, default="")
    # Tool definitions offered to the models (OpenAI's function tools) and the tool_choice.
    tools = models.JSONField(default=list, blank=True)
    tool_choice = models.JSONField(null=True, blank=True)
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    route = models.ForeignKey(
        "routing.TaskRoute", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    task_type = models.CharField(max_length=100, blank=True, default="")
    chain_name = models.CharField(max_length=100, blank=True, default="")
    capability = models.CharField(
        max_length=64, blank=True, default="", help_text="Arena: what the round is about."
    )
    aggregator = models.CharField(max_length=16, choices=Aggregator.choices, blank=True, default="")
    judge_model = models.CharField(max_length=100, blank=True, default="")
    # Consensus: the aggregate answer and how it was reached (see services.consensus_result_store).
    consensus = models.JSONField(default=dict, blank=True)
    consensus_status = models.CharField(max_length=16, choices=ColumnStatus.choices, blank=True, default="")
    trace_id = models.CharField(max_length=32, default=new_trace_id, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "created_at"], name="pg_run_user_time")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.mode})"


class PlaygroundColumn(models.Model):
    """One answer stream: a model, a route or a chain answering the run's prompt."""

    run = models.ForeignKey(PlaygroundRun, on_delete=models.CASCADE, related_name="columns")
    position = models.PositiveIntegerField()
    # What was asked to answer: a model name, or empty for a route/chain (the run says which).
    target_model = models.CharField(max_length=100, blank=True, default="")
    # Who answered in the end (a route or chain picks one).
    answered_by = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=16, choices=ColumnStatus.choices, default=ColumnStatus.PENDING)
    text = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    error_class = models.CharField(max_length=32, blank=True, default="")
    ttft_ms = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=10, null=True, blank=True)
    simulated = models.BooleanField(default=False)
    # The path a route or chain took: [{"model", "attempt", "status", "error_class", "error"}].
    attempts = models.JSONField(default=list, blank=True)
    # The tool calls the answer made: [{"id", "type": "function", "function": {"name", "arguments"}}].
    tool_calls = models.JSONField(default=list, blank=True)
    trace_id = models.CharField(max_length=32, default=new_trace_id, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="pg_unique_column")]

    def __str__(self) -> str:
        return f"run {self.run_id} column {self.position}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def settled(self) -> bool:
        """Finished, and its figures are in: a Stop marks a column finished at once, while the
        stream that claimed it saves what the cancelled call billed a moment later (always
        with a latency)."""
        return self.finished and (self.latency_ms is not None or self.started_at is None)

    @property
    def arena_label(self) -> str:
        return "AB"[self.position] if self.position < 2 else str(self.position)


class Winner(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Vote(models.Model):
    """A human preference between two models' answers to one prompt."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    prompt = models.TextField()
    model_a = models.CharField(max_length=100)
    model_b = models.CharField(max_length=100)
    winner = models.CharField(max_length=16, choices=Winner.choices)
    capability = models.CharField(max_length=64, blank=True, default="")
    task_type = models.CharField(max_length=100, blank=True, default="")
    source = models.CharField(max_length=16, default="arena")
    run = models.ForeignKey(
        PlaygroundRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="votes"
    )
    # Which pair of answers the vote is about (an arena round, two compare cells): a user has
    # one vote per pair, and voting again replaces it (playground.services.vote_create).
    pair = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["capability", "created_at"], name="pg_vote_cap_time"),
            models.Index(fields=["task_type", "created_at"], name="pg_vote_task_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(model_a=models.F("model_b")), name="pg_vote_two_models"
            ),
            models.UniqueConstraint(
                fields=["user", "pair"],
                condition=models.Q(user__isnull=False) & ~models.Q(pair=""),
                name="pg_vote_one_per_user_pair",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_a} vs {self.model_b}: {self.winner}"
