"""Votes from a compare matrix row feed the playground's arena ratings (one per user per pair of cells)."""

from __future__ import annotations

from typing import Any

from compare.models import CellStatus, CompareCell, CompareRun
from playground.services import vote_create

WINNERS = ("a", "b", "tie", "both_bad")


class VoteError(ValueError):
    pass


def cell_vote_create(*, user: Any, run: CompareRun, cell_a_id: int, cell_b_id: int, winner: str) -> Any:
    """Record a preference between two cells of the same row (prompt) of `run`."""
    if winner not in WINNERS:
        raise VoteError(f"Unknown vote {winner!r}: use one of {', '.join(WINNERS)}.")
    cells = {
        c.pk: c
        for c in CompareCell.objects.select_related("prompt").filter(run=run, pk__in=[cell_a_id, cell_b_id])
    }
    a, b = cells.get(cell_a_id), cells.get(cell_b_id)
    if a is None or b is None or a.pk == b.pk:
        raise VoteError("Pick two different cells of this run.")
    if a.prompt_id != b.prompt_id:
        raise VoteError("Both answers must be to the same prompt (the same row).")
    if a.status != CellStatus.DONE or b.status != CellStatus.DONE:
        raise VoteError("Both cells need an answer before you can vote.")
    if a.model_name == b.model_name:
        raise VoteError(
            f"Both answers came from {a.model_name}; votes rate models, so pick two different ones."
        )
    try:
        return vote_create(
            user=user,
            prompt=a.prompt.input,
            model_a=a.model_name,
            model_b=b.model_name,
            winner=winner,
            task_type=a.prompt.task_type,
            source="compare",
            # One vote per user per pair of answers: voting again on these two cells replaces it.
            pair=f"compare:{run.pk}:{min(a.pk, b.pk)}:{max(a.pk, b.pk)}",
        )
    except ValueError as exc:
        raise VoteError(str(exc)) from exc
