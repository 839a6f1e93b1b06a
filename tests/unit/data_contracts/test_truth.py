"""The exact laws in data_contracts.truth agree with simulation and with scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from scipy import integrate, stats
from scipy.special import expit

from data_contracts.truth import (
    DEAL_RATE_COLUMNS,
    batched_expm,
    deal_generator_matrix,
    deal_mean_time_to_win,
    deal_outcome_cdf,
    deal_win_probability,
    expected_sigmoid,
    lead_convert_probability,
)

pytestmark = pytest.mark.unit

#: two deals: a typical one and a slow one that regresses a lot
RATES = np.array(
    [
        [1 / 25, 1 / 33, 1 / 29, 1 / 22, 1 / 82, 1 / 100, 1 / 82, 1 / 64, 0, 0, 1 / 220, 1 / 165],
        [1 / 40, 1 / 50, 1 / 30, 1 / 20, 1 / 60, 1 / 90, 1 / 70, 1 / 50, 0, 0, 1 / 25, 1 / 15],
    ]
)


def simulate_chain(
    rates: np.ndarray, start: int, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(absorbing state 4 won / 5 lost, absorption time in days) of ``n`` paths of one deal."""
    rng = np.random.default_rng(seed)
    adv, lose, reg = rates[0:4], rates[4:8], rates[8:12]
    state = np.full(n, start)
    t = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        s = state[active]
        total = adv[s] + lose[s] + reg[s]
        t[active] += rng.exponential(1 / total)
        u = rng.random(s.size) * total
        state[active] = np.where(u < adv[s], s + 1, np.where(u < adv[s] + lose[s], 5, s - 1))
        active = state < 4
    return state, t


def test_deal_generator_matrix__rows_sum_to_zero_and_absorbing_rows_are_empty():
    q = deal_generator_matrix(RATES)
    assert q.shape == (2, 6, 6)
    np.testing.assert_allclose(q.sum(axis=2), 0.0, atol=1e-15)
    assert (q[:, 4:] == 0).all()
    assert q[0, 0, 1] == RATES[0, 0] and q[0, 3, 4] == RATES[0, 3] and q[1, 3, 2] == RATES[1, 11]


def test_batched_expm__matches_scipy_expm_for_short_and_long_horizons():
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.001, 0.3, size=(200, 12))
    rates[:, 8:10] = 0
    t = np.concatenate([rng.uniform(0, 5, 100), rng.uniform(100, 5000, 100)])
    a = deal_generator_matrix(rates) * t[:, None, None]
    expected = np.stack([scipy.linalg.expm(m) for m in a])
    np.testing.assert_allclose(batched_expm(a), expected, atol=1e-12)


@pytest.mark.parametrize("start", [0, 2])
@pytest.mark.parametrize("deal", [0, 1])
def test_deal_laws__agree_with_monte_carlo_simulation_of_the_chain(deal: int, start: int):
    n = 40_000
    state, t = simulate_chain(RATES[deal], start, n, seed=10 * deal + start)
    won = state == 4
    p_win = deal_win_probability(RATES[deal], start)[0]
    se = np.sqrt(p_win * (1 - p_win) / n)
    assert abs(won.mean() - p_win) < 4 * se
    for horizon in (10.0, 60.0, 200.0):
        p_won, p_lost = deal_outcome_cdf(RATES[deal], start, horizon)
        for observed, p in (((won & (t <= horizon)).mean(), p_won[0]),
                            (((~won) & (t <= horizon)).mean(), p_lost[0])):  # fmt: skip
            assert abs(observed - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-9
    mean_t = deal_mean_time_to_win(RATES[deal], start)[0]
    assert abs(t[won].mean() - mean_t) < 4 * t[won].std() / np.sqrt(won.sum())


def test_deal_outcome_cdf__tends_to_the_win_probability_and_starts_at_zero():
    stages = np.array([0, 3])
    p_won, p_lost = deal_outcome_cdf(RATES, stages, 1e5)
    np.testing.assert_allclose(p_won, deal_win_probability(RATES, stages), atol=1e-10)
    np.testing.assert_allclose(p_won + p_lost, 1.0, atol=1e-10)
    zero_won, zero_lost = deal_outcome_cdf(RATES, stages, 0.0)
    assert (zero_won == 0).all() and (zero_lost == 0).all()


def test_deal_outcome_cdf__is_increasing_in_the_horizon_per_deal():
    t = np.array([[1.0, 1.0], [30.0, 30.0], [90.0, 90.0]])
    won = np.stack([deal_outcome_cdf(RATES, 1, row)[0] for row in t])
    assert (np.diff(won, axis=0) > 0).all()


def test_deal_laws__reject_rates_of_the_wrong_shape_or_sign():
    with pytest.raises(ValueError, match="expected"):
        deal_win_probability(np.ones((3, 11)))
    with pytest.raises(ValueError, match="non-negative"):
        deal_win_probability(-np.ones((1, len(DEAL_RATE_COLUMNS))))
    with pytest.raises(ValueError, match="open stage"):
        deal_outcome_cdf(RATES, 4, 10.0)


def test_expected_sigmoid__matches_numerical_integration():
    for loc, sd in ((-2.0, 1.0), (0.5, 1.3), (-4.0, 0.2), (1.0, 2.0)):
        exact, _ = integrate.quad(
            lambda v, loc=loc, sd=sd: expit(loc + sd * v) * stats.norm.pdf(v), -12, 12,
            epsabs=1e-13,
        )  # fmt: skip
        assert abs(expected_sigmoid(loc, sd)[()] - exact) < 1e-9


def test_expected_sigmoid__refuses_too_few_nodes():
    with pytest.raises(ValueError, match="at least 40"):
        expected_sigmoid(0.0, 1.0, n_nodes=10)


def test_lead_convert_probability__agrees_with_monte_carlo_of_the_lead_law():
    rng = np.random.default_rng(3)
    n = 400_000
    logit_obs, mean, sd, shape, scale = -1.5, 0.0225, np.sqrt(1.0225), 2.0, 30.0
    v = rng.normal(mean, sd, n)
    converts = rng.random(n) < expit(logit_obs + v)
    t = rng.gamma(shape, scale, n)
    observed = (converts & (t <= 90)).mean()
    p = lead_convert_probability(logit_obs, sd, shape, scale, 90.0, mean=mean)[()]
    assert abs(observed - p) < 4 * np.sqrt(p * (1 - p) / n)
    ever = lead_convert_probability(logit_obs, sd, shape, scale, np.inf, mean=mean)[()]
    assert abs(converts.mean() - ever) < 4 * np.sqrt(ever * (1 - ever) / n)
    assert p < ever


def test_lead_convert_probability__is_vectorised_and_monotone():
    logit = np.linspace(-4, 2, 7)
    p = lead_convert_probability(logit, 1.0, 2.0, 20.0, 90.0)
    assert p.shape == (7,) and (np.diff(p) > 0).all()
    short = lead_convert_probability(logit, 1.0, 2.0, 20.0, 30.0)
    assert (short < p).all()
