"""Fitting Bradley–Terry strengths (playground.ratings): Hunter's MM iteration, Newton's
method on the log-posterior, and cheap refits of bootstrap resamples near the point fit.

Every model also plays PRIOR_GAMES pseudo-ties against a fixed anchor of strength 1 (a weak
prior), so an unbeaten model gets a large but finite strength. Pure Python: a handful of
models, no numpy needed.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

PRIOR_GAMES = 1.0  # pseudo-ties against the anchor per model


def fit_weighted(
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


def fit_newton(
    votes: Iterable[tuple[str, str, float, float]], *, start: dict[str, float], iterations: int = 50
) -> dict[str, float]:
    """The same fit as fit_weighted by Newton's method on the log-posterior (log strengths),
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
        value -= sum(PRIOR_GAMES * log1pexp(t) for t in theta)
        value -= sum(n * (theta[i] + log1pexp(theta[j] - theta[i])) for i, j, n in pairs)
        return value

    theta = [math.log(start.get(m, 1.0)) for m in models]
    size = len(models)
    for _ in range(iterations):
        grad = [won[k] - PRIOR_GAMES * sigmoid(theta[k]) for k in range(size)]
        # The negated Hessian: positive definite thanks to the prior game against the anchor.
        hess = [[0.0] * size for _ in range(size)]
        for k in range(size):
            q = sigmoid(theta[k])
            hess[k][k] += PRIOR_GAMES * q * (1.0 - q)
        for i, j, n in pairs:
            p = sigmoid(theta[i] - theta[j])
            grad[i] -= n * p
            grad[j] -= n * (1.0 - p)
            v = n * p * (1.0 - p)
            hess[i][i] += v
            hess[j][j] += v
            hess[i][j] -= v
            hess[j][i] -= v
        step = solve(hess, grad)
        biggest = max(abs(d) for d in step)
        scale = 1.0
        if biggest > 0.5:  # far from the optimum: halve the step until it goes uphill
            current = objective(theta)
            while True:
                trial = [t + scale * d for t, d in zip(theta, step, strict=True)]
                if objective(trial) >= current - 1e-12 or scale < 1e-6:
                    break
                scale /= 2
            theta = trial
        else:  # close: a full Newton step (quadratic convergence)
            theta = [t + d for t, d in zip(theta, step, strict=True)]
        if biggest * scale < 1e-7:
            break
    return {m: math.exp(theta[index[m]]) for m in models}


class Refit:
    """Refits of resamples near the point estimate: Newton steps with the Hessian of the point
    fit, factorised once, so each step costs a gradient and two triangular solves instead of an
    elimination. A resample far from the point (the steps stop shrinking) gets the full
    Newton fit. Every model is refitted, drawn or not (one with no games goes to the prior)."""

    def __init__(self, strengths: dict[str, float], pairs: Counter[tuple[str, str]]) -> None:
        self.models = sorted(strengths)
        self.index = {m: i for i, m in enumerate(self.models)}
        self.start = strengths
        self.theta = [math.log(strengths[m]) for m in self.models]
        size = len(self.models)
        hess = [[0.0] * size for _ in range(size)]
        for k, t in enumerate(self.theta):
            q = sigmoid(t)
            hess[k][k] += PRIOR_GAMES * q * (1.0 - q)
        for (a, b), n in pairs.items():
            i, j = self.index[a], self.index[b]
            p = sigmoid(self.theta[i] - self.theta[j])
            v = n * p * (1.0 - p)
            hess[i][i] += v
            hess[j][j] += v
            hess[i][j] -= v
            hess[j][i] -= v
        self.lu, self.perm = lu_factor(hess)

    def __call__(self, resample: list[tuple[str, str, float, float]]) -> dict[str, float]:
        size = len(self.models)
        won = [0.5 * PRIOR_GAMES] * size
        games: dict[tuple[int, int], float] = defaultdict(float)
        for a, b, score, weight in resample:
            i, j = self.index[a], self.index[b]
            won[i] += score * weight
            won[j] += (1.0 - score) * weight
            games[(i, j)] += weight
        played = [(i, j, n) for (i, j), n in games.items() if n]
        theta = list(self.theta)
        last = math.inf
        for _ in range(60):
            grad = [won[k] - PRIOR_GAMES * sigmoid(theta[k]) for k in range(size)]
            for i, j, n in played:
                p = sigmoid(theta[i] - theta[j])
                grad[i] -= n * p
                grad[j] -= n * (1.0 - p)
            step = lu_solve(self.lu, self.perm, grad)
            biggest = max(abs(d) for d in step)
            if biggest >= last or not math.isfinite(biggest):
                break  # not contracting: this resample is too far from the point
            theta = [t + d for t, d in zip(theta, step, strict=True)]
            last = biggest
            if biggest < 1e-7:
                return {m: math.exp(theta[k]) for k, m in enumerate(self.models)}
        fitted = fit_newton(resample, start=self.start)
        return {m: fitted.get(m, 1.0) for m in self.models}


def lu_factor(matrix: list[list[float]]) -> tuple[list[list[float]], list[int]]:
    """LU factorisation with partial pivoting (rows permuted as `perm` says)."""
    size = len(matrix)
    lu = [list(row) for row in matrix]
    perm = list(range(size))
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(lu[r][col]))
        lu[col], lu[pivot] = lu[pivot], lu[col]
        perm[col], perm[pivot] = perm[pivot], perm[col]
        head = lu[col][col]
        for r in range(col + 1, size):
            factor = lu[r][col] / head
            lu[r][col] = factor
            if factor:
                for c in range(col + 1, size):
                    lu[r][c] -= factor * lu[col][c]
    return lu, perm


def lu_solve(lu: list[list[float]], perm: list[int], vector: list[float]) -> list[float]:
    size = len(vector)
    y = [vector[perm[r]] for r in range(size)]
    for r in range(size):
        y[r] -= sum(lu[r][c] * y[c] for c in range(r))
    for r in range(size - 1, -1, -1):
        y[r] = (y[r] - sum(lu[r][c] * y[c] for c in range(r + 1, size))) / lu[r][r]
    return y


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def log1pexp(x: float) -> float:
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
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
