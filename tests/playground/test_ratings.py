import pytest

from playground import ratings
from playground.ratings import fitting  # noqa: F401  (ratings.fitting below)


def _votes(pairs: list[tuple[str, str, str]], times: int = 1) -> list[ratings.VoteTuple]:
    return [(a, b, ratings.winner_score(w)) for a, b, w in pairs] * times


def test_a_model_that_always_wins_ranks_first():
    votes = _votes(
        [("strong", "weak", "a"), ("mid", "strong", "b"), ("mid", "weak", "a"), ("weak", "strong", "b")], 5
    )
    board = ratings.leaderboard(votes, bootstrap=20)
    assert board.models == ["strong", "mid", "weak"]
    assert board.ratings[0].wins == 15 and board.ratings[0].losses == 0


def test_an_unbeaten_model_gets_a_finite_rating():
    fitted = ratings.fit_ratings(_votes([("a", "b", "a")], 50))
    assert fitted["a"] > fitted["b"]
    assert fitted["a"] < 5000


def test_the_interval_shrinks_with_more_votes():
    pattern = [("x", "y", "a"), ("x", "y", "a"), ("x", "y", "b"), ("y", "x", "tie")]
    few = ratings.leaderboard(_votes(pattern, 3), bootstrap=100)
    many = ratings.leaderboard(_votes(pattern, 60), bootstrap=100)
    width_few = next(r for r in few.ratings if r.model == "x").ci_width
    width_many = next(r for r in many.ratings if r.model == "x").ci_width
    assert width_many < width_few / 2


def test_the_interval_contains_the_rating():
    board = ratings.leaderboard(
        _votes([("p", "q", "a"), ("q", "p", "a"), ("p", "q", "tie")], 10), bootstrap=50
    )
    for r in board.ratings:
        assert r.low <= r.rating <= r.high


def test_both_bad_counts_as_a_tie():
    assert ratings.winner_score("both_bad") == ratings.winner_score("tie") == 0.5
    fitted = ratings.fit_ratings(_votes([("p", "q", "both_bad")], 10))
    assert fitted["p"] == pytest.approx(fitted["q"])


def test_equal_records_give_equal_ratings():
    fitted = ratings.fit_ratings(_votes([("p", "q", "a"), ("p", "q", "b")], 10))
    assert fitted["p"] == pytest.approx(fitted["q"])
    assert fitted["p"] == pytest.approx(ratings.BASE)


def test_the_win_matrix_counts_games_and_half_ties():
    board = ratings.leaderboard(_votes([("p", "q", "a"), ("q", "p", "tie"), ("p", "q", "b")]), bootstrap=0)
    assert board.matrix["p"]["q"] == (1.5, 3)
    assert board.matrix["q"]["p"] == (1.5, 3)


def test_no_votes_give_an_empty_board():
    board = ratings.leaderboard([], bootstrap=10)
    assert board.ratings == [] and board.total_votes == 0


def _interval(board: ratings.Leaderboard, model: str) -> tuple[float, float]:
    rating = next(r for r in board.ratings if r.model == model)
    assert rating.low is not None and rating.high is not None
    return rating.low, rating.high


def test_one_vote_gives_a_wide_interval_on_both_sides_of_the_base():
    board = ratings.leaderboard(_votes([("a", "b", "a")]))
    for model in ("a", "b"):
        low, high = _interval(board, model)
        assert low < ratings.BASE < high  # one vote cannot tell which model is better
        assert high - low > 300


def test_one_tie_is_not_taken_for_certainty():
    low, high = _interval(ratings.leaderboard(_votes([("a", "b", "tie")])), "a")
    assert low < ratings.BASE - 100 and high > ratings.BASE + 100


def test_the_interval_narrows_as_the_same_verdict_is_repeated():
    widths = [
        next(r for r in ratings.leaderboard(_votes([("a", "b", "a")], n)).ratings if r.model == "a").ci_width
        for n in (1, 3, 10, 50)
    ]
    assert widths == sorted(widths, reverse=True) and widths[0] > 1.5 * widths[-1]


def test_a_consistent_winner_is_certain_once_there_are_many_votes():
    low, _ = _interval(ratings.leaderboard(_votes([("a", "b", "a")], 50)), "a")
    assert low > ratings.BASE + 200


def test_the_bootstrap_is_deterministic_and_uses_a_thousand_resamples():
    votes = _votes([("p", "q", "a"), ("q", "r", "b"), ("p", "r", "tie")], 4)
    first = ratings.leaderboard(votes)
    assert [(r.low, r.high) for r in first.ratings] == [
        (r.low, r.high) for r in ratings.leaderboard(votes).ratings
    ]
    assert ratings.BOOTSTRAP_RESAMPLES == 1000
    other_seed = ratings.leaderboard(votes, seed=1)
    assert [(r.low, r.high) for r in first.ratings] != [(r.low, r.high) for r in other_seed.ratings]


def test_newtons_fit_agrees_with_the_mm_iteration():
    votes = _votes([("p", "q", "a"), ("q", "r", "b"), ("p", "r", "tie"), ("r", "s", "a"), ("s", "p", "b")], 7)
    slow = ratings.fitting.fit_weighted([(*v, 1.0) for v in votes], iterations=20_000, tolerance=1e-13)
    fast = ratings.fitting.fit_newton([(*v, 1.0) for v in votes], start={})
    for model, strength in slow.items():
        assert ratings.to_rating(fast[model]) == pytest.approx(ratings.to_rating(strength), abs=1e-4)


def test_an_unbeaten_model_is_fitted_to_convergence():
    board = ratings.leaderboard(_votes([("a", "b", "a")], 3000), bootstrap=0)
    a, b = (next(r.rating for r in board.ratings if r.model == m) for m in ("a", "b"))
    assert a - ratings.BASE == pytest.approx(ratings.BASE - b, abs=1e-3)  # symmetric around the base


def test_each_rating_counts_its_distinct_voters():
    votes = _votes([("a", "b", "a"), ("a", "b", "b"), ("a", "c", "a"), ("b", "c", "tie")])
    board = ratings.leaderboard(votes, voters=[1, 1, 2, None], bootstrap=0)
    by_model = {r.model: (r.votes, r.voters) for r in board.ratings}
    assert by_model == {"a": (3, 2), "b": (3, 2), "c": (2, 2)}


def test_voters_must_match_the_votes():
    with pytest.raises(ValueError, match="one voter per vote"):
        ratings.leaderboard(_votes([("a", "b", "a")]), voters=[1, 2])


def test_a_refit_near_the_point_agrees_with_a_full_fit():
    from collections import Counter

    votes = _votes(
        [("p", "q", "a"), ("q", "r", "b"), ("p", "r", "tie"), ("r", "s", "a"), ("s", "p", "b")], 20
    )
    point = ratings.fitting.fit_newton([(*v, 1.0) for v in votes], start={})
    pairs = Counter((a, b) if a < b else (b, a) for a, b, _ in votes)
    refit = ratings.fitting.Refit(point, pairs)
    for resample in (
        [(a, b, 1.0, 12.0) for (a, b) in pairs] + [(a, b, 0.0, 9.0) for (a, b) in pairs],  # near
        [(a, b, 1.0, 40.0) for (a, b) in pairs] + [(a, b, 0.0, 0.0) for (a, b) in pairs],  # far
    ):
        full = ratings.fitting.fit_newton(resample, start={})
        for model, strength in refit(resample).items():
            assert ratings.to_rating(strength) == pytest.approx(ratings.to_rating(full[model]), abs=1e-3)
