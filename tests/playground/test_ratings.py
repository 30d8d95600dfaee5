import pytest

from playground import ratings


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
