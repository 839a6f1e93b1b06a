"""Survival metrics of close-time outlooks, against brute-force references, hand-computed
cases, lifelines, and a simulation with a known won incidence."""

from __future__ import annotations

import json
import math
import time as clock
import warnings

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import concordance_index as lifelines_concordance_index

from models import survival_metrics as S
from models.competing_risks import CENSORED, LOST, WON
from models.metrics import UndefinedMetricWarning, brier_score, expected_calibration_error

pytestmark = pytest.mark.unit


def brute_force_c_index(
    time: np.ndarray, event: np.ndarray, score: np.ndarray, tau: float | None = None
) -> float:
    """The Wolbers pair definition, literally, in O(n²)."""
    concordant = comparable = 0.0
    for i in range(time.size):
        if event[i] != WON or (tau is not None and time[i] > tau):
            continue
        for j in range(time.size):
            if time[j] > time[i] or (event[j] == LOST and time[j] <= time[i]):
                comparable += 1
                if score[i] > score[j]:
                    concordant += 1.0
                elif score[i] == score[j]:
                    concordant += 0.5
    return concordant / comparable if comparable else math.nan


def simulate_competing_risks(
    n: int, seed: int, censoring_rate: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exponential won / lost times with a covariate on the won hazard, and independent
    exponential censoring. Returns (observed time, observed event, latent time, latent
    event, won hazard)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    rate_won = 0.012 * np.exp(0.8 * x)
    rate_lost = np.full(n, 0.008)
    latent_time = rng.exponential(1.0 / (rate_won + rate_lost))
    latent_event = np.where(rng.random(n) < rate_won / (rate_won + rate_lost), WON, LOST)
    if censoring_rate is None:
        return latent_time, latent_event, latent_time, latent_event, rate_won
    censor_at = rng.exponential(1.0 / censoring_rate, n)
    observed = latent_time <= censor_at
    time = np.where(observed, latent_time, censor_at)
    event = np.where(observed, latent_event, CENSORED)
    return time, event, latent_time, latent_event, rate_won


def true_cif_won(rate_won: np.ndarray, t: float, rate_lost: float = 0.008) -> np.ndarray:
    total = rate_won + rate_lost
    return rate_won / total * (1.0 - np.exp(-total * t))


# --- concordance ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tau", [None, 4.0, 7.5])
@pytest.mark.parametrize(
    ("n_scores", "lost_share"), [(6, 0.33), (None, 0.33), (6, 0.03), (None, 0.03)]
)
def test_concordance_index_won__matches_brute_force_with_ties(
    seed: int, tau: float | None, n_scores: int | None, lost_share: float
) -> None:
    # given integer days (tied times), scores with few values or continuous, and lost
    # deals common or rare (so their scores need not span the range of the wins')
    rng = np.random.default_rng(seed)
    n = 150
    time = rng.integers(0, 10, n).astype(float)
    event = rng.choice(
        [CENSORED, WON, LOST], n, p=[0.5 - lost_share / 2, 0.5 - lost_share / 2, lost_share]
    )
    score = rng.integers(0, n_scores, n).astype(float) if n_scores else rng.random(n)
    # when / then
    expected = brute_force_c_index(time, event, score, tau)
    assert S.concordance_index_won(time, event, score, tau) == pytest.approx(expected, abs=1e-12)


def test_concordance_index_won__matches_lifelines_without_lost_deals_or_tau() -> None:
    # given wins on whole days and censorings on half days: ties among wins, among
    # censorings and in scores, but no win tied with a censoring (lifelines counts such a
    # pair as comparable, assuming the censored deal outlasted the win; the Wolbers
    # definition used here does not — see the next test)
    rng = np.random.default_rng(11)
    n = 800
    event = np.where(rng.random(n) < 0.6, WON, CENSORED)
    time = rng.integers(0, 60, n) + np.where(event == CENSORED, 0.5, 0.0)
    score = np.round(rng.random(n) - time / 120.0, 1)
    # when
    ours = S.concordance_index_won(time, event, score)
    theirs = lifelines_concordance_index(time, -score, event == WON)
    # then
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_concordance_index_won__leaves_out_a_censoring_on_the_day_of_a_win() -> None:
    # given a win on day 5, a deal censored on day 5 and one open until day 9
    time = np.array([5.0, 5.0, 9.0])
    event = np.array([WON, CENSORED, CENSORED])
    score = np.array([0.2, 0.9, 0.1])
    # then only (win, day-9 deal) is comparable, and it is concordant; lifelines would
    # also compare the day-5 censoring (discordant) and give 1/2
    assert S.concordance_index_won(time, event, score) == pytest.approx(1.0)
    assert lifelines_concordance_index(time, -score, event == WON) == pytest.approx(0.5)


def test_concordance_index_won__ranks_a_lost_deal_behind_a_later_win() -> None:
    # given a deal lost on day 3 and one won on day 10: comparable despite the order
    time = np.array([10.0, 3.0])
    event = np.array([WON, LOST])
    assert S.concordance_index_won(time, event, [0.7, 0.2]) == pytest.approx(1.0)
    assert S.concordance_index_won(time, event, [0.2, 0.7]) == pytest.approx(0.0)
    assert S.concordance_index_won(time, event, [0.5, 0.5]) == pytest.approx(0.5)


def test_concordance_index_won__ignores_wins_after_tau_but_not_controls_beyond_it() -> None:
    # given wins on days 10 and 40, tau = 10, and a deal open until day 50
    time = np.array([10.0, 40.0, 50.0])
    event = np.array([WON, WON, CENSORED])
    score = np.array([0.1, 0.9, 0.5])
    # then the day-40 win is no case; the day-10 win is compared with both later deals
    assert S.concordance_index_won(time, event, score, tau_days=10.0) == pytest.approx(0.0)
    assert S.concordance_index_won(time, event, score) == pytest.approx(1 / 3)


def test_concordance_index_won__is_one_for_a_perfect_score_and_zero_for_its_reverse() -> None:
    time, event, *_ = simulate_competing_risks(2000, seed=3, censoring_rate=0.005)
    perfect = np.where(event == WON, 1000.0 - time, -time)
    assert S.concordance_index_won(time, event, perfect) == pytest.approx(1.0)
    assert S.concordance_index_won(time, event, -perfect) == pytest.approx(0.0)
    assert S.concordance_index_won(time, event, np.zeros(time.size)) == pytest.approx(0.5)


def test_concordance_index_won__is_nan_with_a_warning_without_comparable_pairs() -> None:
    with pytest.warns(UndefinedMetricWarning, match="no comparable pairs"):
        value = S.concordance_index_won([3.0, 8.0], [CENSORED, LOST], [0.1, 0.2])
    assert math.isnan(value)
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(S.concordance_index_won([30.0, 80.0], [WON, CENSORED], [1, 0], 10.0))


def test_concordance_index_won__takes_well_under_two_seconds_for_200k_deals() -> None:
    rng = np.random.default_rng(5)
    n = 200_000
    time = np.round(rng.exponential(60.0, n))
    event = rng.integers(0, 3, n)
    score = np.round(rng.random(n), 3)
    start = clock.perf_counter()
    value = S.concordance_index_won(time, event, score, tau_days=84.0)
    elapsed = clock.perf_counter() - start
    assert 0.45 < value < 0.55
    assert elapsed < 5.0  # ~0.6 s here; an O(n²) implementation takes minutes


# --- censoring distribution -------------------------------------------------------------


def test_censoring_survival__matches_lifelines_reverse_kaplan_meier() -> None:
    # given continuous times (no close tied with a censoring, where conventions differ)
    time, event, *_ = simulate_competing_risks(3000, seed=8, censoring_rate=0.01)
    g = S.censoring_survival(time, event)
    km = KaplanMeierFitter().fit(time, event_observed=event == CENSORED)
    grid = np.r_[0.0, np.quantile(time, np.linspace(0.01, 0.99, 60)), time.max() + 1.0]
    # then
    expected = km.survival_function_at_times(grid).to_numpy()
    np.testing.assert_allclose(g(grid), expected, atol=1e-12)
    # and the left limit at each censoring day is the value just before it
    np.testing.assert_allclose(g.left(g.times[1:]), g.survival[:-1], atol=1e-12)
    assert g.left(g.times[0]) == pytest.approx(1.0)


def test_censoring_survival__lets_closes_on_a_day_go_before_its_censorings() -> None:
    # given day 1: one win and one censoring among 4 at risk; day 2: one censoring of 2
    g = S.censoring_survival([1.0, 1.0, 2.0, 3.0], [WON, CENSORED, CENSORED, LOST])
    # then the win is not at risk of day 1's censoring: 1 − 1/3, not 1 − 1/4
    np.testing.assert_allclose(g([0.5, 1.0, 1.5, 2.0, 3.0]), [1, 2 / 3, 2 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(g.left([1.0, 2.0, 3.0]), [1.0, 2 / 3, 1 / 3])


# --- Brier score ------------------------------------------------------------------------


def test_brier_score_won__matches_a_hand_computed_case() -> None:
    # G = 3/4 from day 1; t = 2.5: row 0 censored before t (weight 0), row 1 won on day 2
    # (weight 1/G(2−) = 4/3, target 1), rows 2 and 3 still open at t (weight 4/3, target 0)
    time = [1.0, 2.0, 3.0, 4.0]
    event = [CENSORED, WON, LOST, CENSORED]
    p = [0.9, 0.8, 0.3, 0.1]
    expected = (0.2**2 + 0.3**2 + 0.1**2) * (4 / 3) / 4
    assert S.brier_score_won(time, event, p, 2.5) == pytest.approx(expected)


def test_brier_score_won__equals_the_plain_brier_without_censoring_by_t() -> None:
    # given censoring only after the horizon
    time, event, _, _, rate_won = simulate_competing_risks(5000, seed=2, censoring_rate=None)
    t = 60.0
    event = np.where(time > 150.0, CENSORED, event)
    p = true_cif_won(rate_won, t)
    won_by_t = (event == WON) & (time <= t)
    # then
    assert S.brier_score_won(time, event, p, t) == pytest.approx(brier_score(won_by_t, p))


@pytest.mark.parametrize("t", [30.0, 90.0])
def test_brier_score_won__recovers_the_uncensored_brier_under_independent_censoring(
    t: float,
) -> None:
    # given about a third of the deals censored, and predictions that are the true
    # incidence shrunk a bit
    time, event, latent_time, latent_event, rate_won = simulate_competing_risks(
        20_000, seed=21, censoring_rate=0.01
    )
    p = 0.85 * true_cif_won(rate_won, t)
    truth = brier_score((latent_event == WON) & (latent_time <= t), p)
    naive = brier_score((event == WON) & (time <= t), p)  # censored counted as not won
    # when
    ipcw = S.brier_score_won(time, event, p, t)
    # then within Monte-Carlo error of the uncensored score (sd ≈ 0.001 over seeds), and
    # closer than the naive score that counts censored deals as not won (off by 0.006–0.013)
    assert ipcw == pytest.approx(truth, abs=0.003)
    assert abs(ipcw - truth) < abs(naive - truth)


def test_brier_score_won__is_nan_with_a_warning_on_no_rows() -> None:
    with pytest.warns(UndefinedMetricWarning, match="no rows"):
        assert math.isnan(S.brier_score_won([], [], [], 30.0))


# --- calibration and close date ---------------------------------------------------------


def test_calibration_at__leaves_out_deals_censored_before_t() -> None:
    # given rows: won day 10, lost day 20, censored day 5 and day 30 (= t), open to day 50
    time = np.array([10.0, 20.0, 5.0, 30.0, 50.0])
    event = np.array([WON, LOST, CENSORED, CENSORED, CENSORED])
    p = np.array([0.8, 0.3, 0.6, 0.6, 0.2])
    # when
    out = S.calibration_at(time, event, p, 30.0, n_bins=2)
    # then the two rows censored at or before day 30 are left out
    assert out["n"] == 3
    assert out["n_unknown"] == 2
    assert out["observed_rate"] == pytest.approx(1 / 3)
    assert out["mean_predicted"] == pytest.approx((0.8 + 0.3 + 0.2) / 3)
    known = [0, 1, 4]
    assert out["ece"] == pytest.approx(expected_calibration_error([1, 0, 0], p[known], 2))
    # and their predictions do not matter
    p_changed = p.copy()
    p_changed[[2, 3]] = [0.0, 1.0]
    assert S.calibration_at(time, event, p_changed, 30.0, n_bins=2) == out


def test_median_close_mae__averages_over_won_deals_with_a_median() -> None:
    time = [10.0, 20.0, 30.0, 40.0]
    event = [WON, WON, LOST, WON]
    median = [14.0, 18.0, 0.0, np.nan]
    assert S.median_close_mae(time, event, median) == pytest.approx((4 + 2) / 2)
    with pytest.warns(UndefinedMetricWarning, match="no won deal"):
        assert math.isnan(S.median_close_mae(time, [LOST, LOST, LOST, WON], median))


# --- report -----------------------------------------------------------------------------


def test_survival_report__agrees_with_the_functions_and_serialises_to_json() -> None:
    # given
    time, event, _, _, rate_won = simulate_competing_risks(3000, seed=4, censoring_rate=0.01)
    p_won = {h: true_cif_won(rate_won, float(h)) for h in (30, 60, 90)}
    median = np.log(2) / (rate_won + 0.008)
    # when
    report = S.survival_report(
        time, event, p_won, score=p_won[90], median_won_days=median, tau_days=84.0
    )
    # then
    assert report["n"] == 3000
    assert report["n_won"] + report["n_lost"] + report["n_censored"] == 3000
    assert report["c_index"] == pytest.approx(S.concordance_index_won(time, event, p_won[90], 84.0))
    for h in (30, 60, 90):
        calib = S.calibration_at(time, event, p_won[h], h)
        assert report[f"brier_{h}d"] == pytest.approx(S.brier_score_won(time, event, p_won[h], h))
        assert report[f"ece_{h}d"] == pytest.approx(calib["ece"])
        assert report[f"observed_{h}d"] == pytest.approx(calib["observed_rate"])
        assert report[f"predicted_{h}d"] == pytest.approx(calib["mean_predicted"])
        assert report[f"n_known_{h}d"] == calib["n"]
    assert report["median_close_mae_days"] == pytest.approx(S.median_close_mae(time, event, median))
    assert report["n_won_for_mae"] == report["n_won"]
    assert report["c_index"] > 0.6
    assert all(type(v) in (int, float) for v in report.values())
    assert json.loads(json.dumps(report)) == report


def test_survival_report__omits_the_close_date_without_medians_and_keeps_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        report = S.survival_report([5.0, 9.0], [CENSORED, LOST], {30: [0.1, 0.2]}, score=[1, 2])
    assert "median_close_mae_days" not in report
    assert math.isnan(report["c_index"])
    assert report["n_known_30d"] == 1


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time", "event", "match"),
    [
        ([1.0, 2.0], [WON], "same length"),
        ([1.0, -2.0], [WON, LOST], "time must be finite days ≥ 0 from the snapshot; position 1"),
        ([1.0, np.nan], [WON, LOST], "time must be finite"),
        ([1.0, 2.0], [WON, 3], "event must hold the codes 0 .* position 1 holds 3"),
        ([1.0, 2.0], [True, False], "not a boolean event indicator"),
        ([[1.0, 2.0]], [[WON, LOST]], "1-D"),
    ],
)
def test_survival_metrics__reject_bad_outcomes(time: object, event: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        S.concordance_index_won(time, event, [0.5, 0.5])  # type: ignore[arg-type]


def test_survival_metrics__reject_bad_predictions_and_days() -> None:
    time, event = [10.0, 20.0], [WON, CENSORED]
    with pytest.raises(ValueError, match=r"p_won_by_t must hold probabilities in \[0, 1\]"):
        S.brier_score_won(time, event, [0.5, 1.2], 30.0)
    with pytest.raises(ValueError, match="p_won_by_t must be a 1-D array with one value per"):
        S.calibration_at(time, event, [0.5], 30.0)
    with pytest.raises(ValueError, match="score must hold finite numbers; position 0"):
        S.concordance_index_won(time, event, [np.nan, 0.5])
    with pytest.raises(ValueError, match="tau_days must be a finite number of days"):
        S.concordance_index_won(time, event, [0.1, 0.5], tau_days=-1.0)
    with pytest.raises(ValueError, match="t_days must be a finite number of days"):
        S.brier_score_won(time, event, [0.5, 0.5], math.inf)
    with pytest.raises(ValueError, match="median_won_days must be days ≥ 0"):
        S.median_close_mae(time, event, [-3.0, 1.0])
    with pytest.raises(ValueError, match=r"p_won\[30\] must hold probabilities"):
        S.survival_report(time, event, {30: [0.1, -0.1]}, score=[0.1, 0.2])


def test_brier_difference__sign_interval_and_equality_with_the_brier_scores() -> None:
    rng = np.random.default_rng(8)
    n = 4000
    deals = rng.integers(0, 800, n)  # five snapshots per deal on average
    truth = rng.uniform(0.1, 0.9, 800)[deals]
    won = rng.random(n) < truth
    time = np.where(won, rng.uniform(1, 80, n), rng.uniform(100, 200, n))
    event = np.where(won, WON, LOST)
    good, noisy = truth, np.clip(truth + rng.normal(0, 0.2, n), 0, 1)
    gap = S.brier_difference(time, event, good, noisy, 90.0, deals, n_boot=400)
    expected = S.brier_score_won(time, event, good, 90.0) - S.brier_score_won(
        time, event, noisy, 90.0
    )
    assert gap["difference"] == pytest.approx(expected)
    assert gap["ci_low"] < gap["difference"] < gap["ci_high"] < 0
    assert gap["groups"] == len(np.unique(deals))
    same = S.brier_difference(time, event, good, good, 90.0, deals, n_boot=50)
    assert same["difference"] == same["ci_low"] == same["ci_high"] == 0.0
    with pytest.raises(ValueError, match="groups"):
        S.brier_difference(time, event, good, good, 90.0, deals[:-1])
