"""Bradley-Terry arena ratings recover a known ordering and mark thin evidence provisional."""

from __future__ import annotations

import numpy as np

from cadenza.bradley_terry import PROVISIONAL_VOTES, fit_strengths, ratings, to_elo


def synthetic_votes(strength: dict[str, float], n: int, seed: int = 0,
                    tie_rate: float = 0.1) -> list[tuple[str, str, float]]:
    rng = np.random.default_rng(seed)
    names = list(strength)
    votes = []
    for _ in range(n):
        a, b = rng.choice(names, 2, replace=False)
        if rng.random() < tie_rate:
            votes.append((str(a), str(b), 0.5))
            continue
        p = strength[a] / (strength[a] + strength[b])
        votes.append((str(a), str(b), 1.0 if rng.random() < p else 0.0))
    return votes


def test_known_ordering_is_recovered_with_intervals_covering_the_truth() -> None:
    truth = {"lstm": 4.0, "gru": 2.0, "gan": 1.0, "rnn": 0.5}
    gm = np.exp(np.mean(np.log(list(truth.values()))))
    covered = total = 0
    # a 95% interval misses now and then: count coverage over ten synthetic arenas
    for run in range(10):
        # ties drawn independently of strength would pull ratings together, so none here
        result = ratings(synthetic_votes(truth, 3000, seed=run, tie_rate=0.0), boot=100,
                         seed=run)
        assert [r.model for r in result] == ["lstm", "gru", "gan", "rnn"]
        for r in result:
            true_elo = 1000 + 400 * np.log10(truth[r.model] / gm)
            covered += r.low <= true_elo <= r.high
            total += 1
            assert r.low <= r.rating <= r.high and not r.provisional
        # a 2:1 strength ratio is ~120 Elo points
        assert 80 < result[0].rating - result[1].rating < 170
    assert covered >= 34, f"{covered} of {total} intervals cover the truth"


def test_a_unanimous_record_still_has_an_interval() -> None:
    # resampling 25 identical votes gives 25 identical votes: the interval must come from the
    # model's own uncertainty, not collapse to the point
    few, many = (ratings([("lstm", "gru", 1.0)] * n, boot=200) for n in (5, 100))
    for result in (few, many):
        best = result[0]
        assert best.model == "lstm" and best.low < best.rating <= best.high
    assert few[0].rating - few[0].low > many[0].rating - many[0].low > 0  # more votes: surer
    assert few[0].rating < many[0].rating


def test_hand_computed_two_model_case() -> None:
    # A beats B 3 times out of 4, no prior: strengths 3:1 -> 400*log10(3) apart, centred on 1000
    s = fit_strengths([("a", "b", 1.0)] * 3 + [("a", "b", 0.0)], ["a", "b"], prior=0.0)
    elo = to_elo(s)
    assert np.isclose(elo[0] - elo[1], 400 * np.log10(3), atol=1e-6)
    assert np.isclose(elo.mean(), 1000)


def test_unbeaten_models_stay_finite_and_few_votes_are_provisional() -> None:
    result = ratings([("lstm", "gan", 1.0)] * 5, boot=50)
    assert all(np.isfinite([r.rating, r.low, r.high]).all() for r in result)
    assert result[0].model == "lstm" and result[0].votes == 5 < PROVISIONAL_VOTES
    assert result[0].provisional and result[0].wins == 5
    assert ratings([]) == []


def test_ties_pull_ratings_together() -> None:
    def gap(votes: list[tuple[str, str, float]]) -> float:
        by_model = {r.model: r.rating for r in ratings(votes, boot=20)}
        return by_model["a"] - by_model["b"]

    decisive = [("a", "b", 1.0)] * 10
    tie = ("a", "b", 0.5)
    gaps = [gap(decisive), gap(decisive + [tie] * 10), gap(decisive + [tie] * 40)]
    assert gaps[0] > gaps[1] > gaps[2] > 0  # more ties, closer ratings; a stays ahead
    # without the prior, 10 wins and 10 ties are 15 : 5 half-wins, odds 3:1
    elo = to_elo(fit_strengths(decisive + [tie] * 10, ["a", "b"], prior=0.0))
    assert np.isclose(elo[0] - elo[1], 400 * np.log10(3), atol=1e-6)
