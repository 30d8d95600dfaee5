"""Bradley–Terry ratings from pairwise votes, with bootstrap confidence intervals.

Pure functions over plain tuples so they are cheap to test and to cache.

- A vote is `(model_a, model_b, score_a)` with score_a 1 (A better), 0 (B better) or 0.5 (tie).
  "Both bad" counts as a tie, as Chatbot Arena does: neither answer was preferred.
- The fit is Hunter's MM iteration for Bradley–Terry. Every model also plays one pseudo-tie
  against a fixed anchor of strength 1 (a weak prior), so an unbeaten model gets a large
  but finite rating and models with few votes stay near the middle.
- Ratings are on an Elo-like scale: 1000 + 400·log10(strength); a 400-point gap means
  10:1 odds of being preferred.
- The 95% interval comes from 100 refits on bootstrap resamples of the votes (Poisson
  bootstrap; seeded, so the same votes always give the same interval).
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

VoteTuple = tuple[str, str, float]

BASE = 1000.0
SCALE = 400.0
PRIOR_GAMES = 1.0  # pseudo-ties against the anchor per model


@dataclass
class Rating:
    model: str
    rating: float
    low: float | None = None
    high: float | None = None
    votes: int = 0
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
    return _fit_weighted(
        [(a, b, score, 1.0) for a, b, score in votes], iterations=iterations, tolerance=tolerance
    )


def _fit_weighted(
    votes: Iterable[tuple[str, str, float, float]],
    *,
    iterations: int = 500,
    tolerance: float = 1e-9,
    start: dict[str, float] | None = None,
) -> dict[str, float]:
    """The fit over (model_a, model_b, score_a, how many such votes)."""
    wins: dict[str, float] = defaultdict(float)
    games: dict[tuple[str, str], float] = defaultdict(float)
    for a, b, score, weight in votes:
        if not weight:
            continue
        wins[a] += score * weight
        wins[b] += (1.0 - score) * weight
        key = (a, b) if a < b else (b, a)
        games[key] += weight
    models = sorted(wins)
    if not models:
        return {}
    opponents: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (a, b), n in games.items():
        opponents[a].append((b, n))
        opponents[b].append((a, n))
    strength = {m: (start or {}).get(m, 1.0) for m in models}
    for _ in range(iterations):
        biggest_change = 0.0
        new: dict[str, float] = {}
        for m in models:
            p = strength[m]
            # The pseudo-tie: half a win out of one game against the anchor (strength 1).
            numerator = wins[m] + 0.5 * PRIOR_GAMES
            denominator = PRIOR_GAMES / (p + 1.0)
            for other, n in opponents[m]:
                denominator += n / (p + strength[other])
            value = numerator / denominator
            new[m] = value
            biggest_change = max(biggest_change, abs(math.log(value) - math.log(p)))
        strength = new
        if biggest_change < tolerance:
            break
    return strength


def to_rating(strength: float) -> float:
    return BASE + SCALE * math.log10(strength)


def fit_ratings(votes: Sequence[VoteTuple]) -> dict[str, float]:
    return {m: to_rating(s) for m, s in fit_strengths(votes).items()}


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's method for small means, the normal approximation above 30."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _percentile(sorted_values: list[float], q: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def leaderboard(votes: Iterable[VoteTuple], *, bootstrap: int = 100, seed: int = 0) -> Leaderboard:
    votes = list(votes)
    board = Leaderboard(total_votes=len(votes))
    if not votes:
        return board
    point_strengths = fit_strengths(votes)
    point = {m: to_rating(v) for m, v in point_strengths.items()}
    samples: dict[str, list[float]] = defaultdict(list)
    if bootstrap > 0:
        # Poisson bootstrap: each group of identical votes is redrawn with a Poisson count of
        # its size (the large-sample equivalent of resampling with replacement), so a refit
        # costs the number of distinct votes (few: pairs × outcomes), not the number of votes.
        rng = random.Random(seed)
        groups = Counter(votes)
        for _ in range(bootstrap):
            fitted = _fit_weighted(
                ((*kind, float(_poisson(rng, count))) for kind, count in groups.items()),
                tolerance=1e-6,
                start=point_strengths,
            )
            for model, strength in fitted.items():
                samples[model].append(to_rating(strength))
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # wins, losses, ties
    matrix: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    for a, b, score in votes:
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
        # A model missing from some resamples has fewer draws; its interval stays honest (wider).
        low = _percentile(drawn, 0.025) if drawn else None
        high = _percentile(drawn, 0.975) if drawn else None
        if low is not None and high is not None:
            low, high = min(low, value), max(high, value)
        w, lo, t = counts[model]
        board.ratings.append(
            Rating(model=model, rating=value, low=low, high=high, votes=w + lo + t, wins=w, losses=lo, ties=t)
        )
    board.ratings.sort(key=lambda r: (-r.rating, r.model))
    board.matrix = {a: {b: (cell[0], int(cell[1])) for b, cell in row.items()} for a, row in matrix.items()}
    return board
