"""Bradley–Terry ratings from pairwise votes, with bootstrap confidence intervals.

Pure functions over plain tuples so they are cheap to test and to cache.

- A vote is `(model_a, model_b, score_a)` with score_a 1 (A better), 0 (B better) or 0.5 (tie).
  "Both bad" counts as a tie, as Chatbot Arena does: neither answer was preferred.
- The fit (playground.ratings.fitting) is Hunter's MM iteration for Bradley–Terry, finished
  by Newton's method. Every model also plays one pseudo-tie against a fixed anchor of
  strength 1 (a weak prior), so an unbeaten model gets a large but finite rating and models
  with few votes stay near the middle.
- Ratings are on an Elo-like scale: 1000 + 400·log10(strength); a 400-point gap means
  10:1 odds of being preferred.
- The 95% interval comes from 1000 refits on bootstrap resamples of the votes (Poisson
  bootstrap; seeded, so the same votes always give the same interval). A model left out of a
  resample (none of its votes drawn) has only the prior there, so it counts at the base rating:
  dropping those resamples made the interval of a model with one vote 90 points wide and
  exclude the base, as if one vote were conclusive.
- A vote is counted once per voter and pair of answers (the playground's votes are unique on
  that), and each rating says how many distinct voters it rests on.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from playground.ratings.fitting import Refit, fit_newton, fit_weighted

VoteTuple = tuple[str, str, float]

BASE = 1000.0
SCALE = 400.0


@dataclass
class Rating:
    model: str
    rating: float
    low: float | None = None
    high: float | None = None
    votes: int = 0
    voters: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0

    @property
    def ci_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return self.high - self.low

    @property
    def plus(self) -> float | None:
        return None if self.high is None else self.high - self.rating

    @property
    def minus(self) -> float | None:
        return None if self.low is None else self.rating - self.low


@dataclass
class Leaderboard:
    ratings: list[Rating] = field(default_factory=list)  # best first
    # matrix[a][b] = (wins of a over b, games between them); ties count half a win each.
    matrix: dict[str, dict[str, tuple[float, int]]] = field(default_factory=dict)
    total_votes: int = 0

    @property
    def models(self) -> list[str]:
        return [r.model for r in self.ratings]


def winner_score(winner: str) -> float:
    """Score of model A for a stored winner value."""
    return {"a": 1.0, "b": 0.0}.get(winner, 0.5)


def fit_strengths(
    votes: Sequence[VoteTuple], *, iterations: int = 500, tolerance: float = 1e-9
) -> dict[str, float]:
    """Bradley–Terry strengths by MM iteration (anchor strength 1, one pseudo-tie each)."""
    return fit_weighted(
        [(a, b, score, 1.0) for a, b, score in votes], iterations=iterations, tolerance=tolerance
    )


def to_rating(strength: float) -> float:
    return BASE + SCALE * math.log10(strength)


def fit_ratings(votes: Sequence[VoteTuple]) -> dict[str, float]:
    return {m: to_rating(s) for m, s in fit_strengths(votes).items()}


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: inversion (one uniform draw) for small means, the normal approximation above 15."""
    if mean > 15:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    u = rng.random()
    k, p = 0, math.exp(-mean)
    cumulative = p
    while u > cumulative and k < 200:
        k += 1
        p *= mean / k
        cumulative += p
    return k


def _percentile(sorted_values: list[float], q: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


BOOTSTRAP_RESAMPLES = 1000


def leaderboard(
    votes: Iterable[VoteTuple],
    *,
    voters: Sequence[Hashable | None] | None = None,
    bootstrap: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Leaderboard:
    """Ratings, intervals and the win matrix. `voters` (one per vote, None for an anonymous
    one, which counts as a voter of its own) gives each rating its count of distinct voters."""
    votes = list(votes)
    if voters is not None and len(voters) != len(votes):
        raise ValueError("voters must name one voter per vote")
    board = Leaderboard(total_votes=len(votes))
    if not votes:
        return board
    # MM gets close cheaply; Newton finishes the fit (MM crawls when one model is unbeaten).
    point_strengths = fit_newton([(a, b, score, 1.0) for a, b, score in votes], start=fit_strengths(votes))
    point = {m: to_rating(v) for m, v in point_strengths.items()}
    samples: dict[str, list[float]] = defaultdict(list)
    if bootstrap > 0:
        # A smoothed Poisson bootstrap over the votes: the games between each pair are redrawn
        # as independent Poisson counts of wins and losses whose means split the pair's number
        # of votes by the fitted odds. With the empirical split this is the large-sample
        # equivalent of resampling votes with replacement; the fitted split (which the prior
        # pulls towards even) also lets an upset happen that a handful of votes never showed,
        # so one vote gives an interval on both sides of the base, and a tie is not certainty.
        # A refit costs the number of pairs, not the number of votes.
        rng = random.Random(seed)
        pairs: Counter[tuple[str, str]] = Counter((a, b) if a < b else (b, a) for a, b, _ in votes)
        refit = Refit(point_strengths, pairs)
        for _ in range(bootstrap):
            resample: list[tuple[str, str, float, float]] = []
            for (a, b), n in pairs.items():
                p = point_strengths[a] / (point_strengths[a] + point_strengths[b])
                resample.append((a, b, 1.0, float(_poisson(rng, n * p))))
                resample.append((a, b, 0.0, float(_poisson(rng, n * (1.0 - p)))))
            for model, strength in refit(resample).items():
                # A model none of whose votes was drawn has only the prior: strength 1.
                samples[model].append(to_rating(strength))
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # wins, losses, ties
    matrix: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    seen: dict[str, set[Hashable]] = defaultdict(set)
    for index, (a, b, score) in enumerate(votes):
        voter = voters[index] if voters is not None else None
        if voter is None:
            voter = ("vote", index)
        seen[a].add(voter)
        seen[b].add(voter)
        if score == 1.0:
            counts[a][0] += 1
            counts[b][1] += 1
        elif score == 0.0:
            counts[a][1] += 1
            counts[b][0] += 1
        else:
            counts[a][2] += 1
            counts[b][2] += 1
        matrix[a][b][0] += score
        matrix[a][b][1] += 1
        matrix[b][a][0] += 1.0 - score
        matrix[b][a][1] += 1
    for model, value in point.items():
        drawn = sorted(samples.get(model, []))
        low = _percentile(drawn, 0.025) if drawn else None
        high = _percentile(drawn, 0.975) if drawn else None
        if low is not None and high is not None:
            low, high = min(low, value), max(high, value)
        w, lo, t = counts[model]
        board.ratings.append(
            Rating(
                model=model,
                rating=value,
                low=low,
                high=high,
                votes=w + lo + t,
                voters=len(seen[model]),
                wins=w,
                losses=lo,
                ties=t,
            )
        )
    board.ratings.sort(key=lambda r: (-r.rating, r.model))
    board.matrix = {a: {b: (cell[0], int(cell[1])) for b, cell in row.items()} for a, row in matrix.items()}
    return board
