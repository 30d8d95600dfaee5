"""Bradley–Terry ratings from pairwise votes, with bootstrap confidence intervals.

Pure functions over plain tuples so they are cheap to test and to cache.

- A vote is `(model_a, model_b, score_a)` with score_a 1 (A better), 0 (B better) or 0.5 (tie).
  "Both bad" counts as a tie, as Chatbot Arena does: neither answer was preferred.
- The fit is Hunter's MM iteration for Bradley–Terry. Every model also plays one pseudo-tie
  against a fixed anchor of strength 1 (a weak prior), so an unbeaten model gets a large
  but finite rating and models with few votes stay near the middle.
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


def _fit_newton(
    votes: Iterable[tuple[str, str, float, float]], *, start: dict[str, float], iterations: int = 50
) -> dict[str, float]:
    """The same fit as _fit_weighted by Newton's method on the log-posterior (log strengths),
    with step halving: a few steps from a nearby start instead of hundreds of MM steps, which
    is what makes a thousand bootstrap refits affordable."""
    wins: dict[str, float] = defaultdict(float)
    games: dict[tuple[str, str], float] = defaultdict(float)
    for a, b, score, weight in votes:
        if not weight:
            continue
        wins[a] += score * weight
        wins[b] += (1.0 - score) * weight
        games[(a, b) if a < b else (b, a)] += weight
    models = sorted(wins)
    if not models:
        return {}
    index = {m: i for i, m in enumerate(models)}
    pairs = [(index[a], index[b], n) for (a, b), n in games.items()]
    won = [wins[m] + 0.5 * PRIOR_GAMES for m in models]

    def objective(theta: list[float]) -> float:
        value = sum(w * t for w, t in zip(won, theta, strict=True))
        value -= sum(PRIOR_GAMES * _log1pexp(t) for t in theta)
        value -= sum(n * (theta[i] + _log1pexp(theta[j] - theta[i])) for i, j, n in pairs)
        return value

    theta = [math.log(start.get(m, 1.0)) for m in models]
    current = objective(theta)
    size = len(models)
    for _ in range(iterations):
        grad = [won[k] - PRIOR_GAMES * _sigmoid(theta[k]) for k in range(size)]
        # The negated Hessian: positive definite thanks to the prior game against the anchor.
        hess = [[0.0] * size for _ in range(size)]
        for k in range(size):
            q = _sigmoid(theta[k])
            hess[k][k] += PRIOR_GAMES * q * (1.0 - q)
        for i, j, n in pairs:
            p = _sigmoid(theta[i] - theta[j])
            grad[i] -= n * p
            grad[j] -= n * (1.0 - p)
            v = n * p * (1.0 - p)
            hess[i][i] += v
            hess[j][j] += v
            hess[i][j] -= v
            hess[j][i] -= v
        step = _solve(hess, grad)
        scale = 1.0
        while True:
            trial = [t + scale * d for t, d in zip(theta, step, strict=True)]
            value = objective(trial)
            if value >= current - 1e-12 or scale < 1e-6:
                break
            scale /= 2
        theta, current = trial, value
        if max(abs(scale * d) for d in step) < 1e-9:
            break
    return {m: math.exp(theta[index[m]]) for m in models}


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _log1pexp(x: float) -> float:
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (a handful of models: no numpy needed)."""
    size = len(vector)
    rows = [[*row, value] for row, value in zip(matrix, vector, strict=True)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        head = rows[col][col]
        for r in range(col + 1, size):
            factor = rows[r][col] / head
            if factor:
                for c in range(col, size + 1):
                    rows[r][c] -= factor * rows[col][c]
    out = [0.0] * size
    for r in range(size - 1, -1, -1):
        out[r] = (rows[r][size] - sum(rows[r][c] * out[c] for c in range(r + 1, size))) / rows[r][r]
    return out


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
    point_strengths = _fit_newton([(a, b, score, 1.0) for a, b, score in votes], start=fit_strengths(votes))
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
        for _ in range(bootstrap):
            resample: list[tuple[str, str, float, float]] = []
            for (a, b), n in pairs.items():
                p = point_strengths[a] / (point_strengths[a] + point_strengths[b])
                resample.append((a, b, 1.0, float(_poisson(rng, n * p))))
                resample.append((a, b, 0.0, float(_poisson(rng, n * (1.0 - p)))))
            fitted = _fit_newton(resample, start=point_strengths)
            for model in point_strengths:
                # Not drawn in this resample: only the prior speaks for it (strength 1).
                samples[model].append(to_rating(fitted.get(model, 1.0)))
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
