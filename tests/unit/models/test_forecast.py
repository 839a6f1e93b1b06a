"""The Monte Carlo forecast: exact moments, determinism, dependence and its fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from models.backtest import (
    BacktestSettings,
    PeriodForecast,
    coverage_check,
    crps_grid,
    fit_calibration,
    fit_recalibration,
    summary_metrics,
)
from models.calibration import PlattCalibrator, logit, sigmoid
from models.forecast import (
    ClosedDeals,
    ForecastInputs,
    NewDealLaw,
    OpenDeals,
    Period,
    bernoulli_sums,
    breakdown,
    conditional_p,
    drivers,
    simulate,
    summarize,
)
from models.forecast_inputs import recalibrated, won_in_period

PERIOD = Period.from_days("2026-11-01", "2026-11-30")


def _open(p: np.ndarray, amount: np.ndarray, flags: list[str] | None = None) -> OpenDeals:
    n = len(p)
    text = np.array([f"x{i % 3}" for i in range(n)], dtype=object)
    return OpenDeals(
        deal_id=np.array([f"D{i}" for i in range(n)], dtype=object),
        amount=amount.astype(np.float64),
        p_won=p.astype(np.float64),
        stage=text,
        owner=text,
        product=text,
        flags=np.array(flags or [""] * n, dtype=object),
    )


def _closed(amounts: list[float]) -> ClosedDeals:
    n = len(amounts)
    e = np.array(["c"] * n, dtype=object)
    return ClosedDeals(np.array([f"C{i}" for i in range(n)], dtype=object),
                       np.array(amounts, dtype=np.float64), e, e, e)  # fmt: skip


def _inputs(
    p: np.ndarray,
    amount: np.ndarray,
    *,
    new: NewDealLaw | None = None,
    closed: list[float] | None = None,
    flags: list[str] | None = None,
) -> ForecastInputs:
    return ForecastInputs(
        period=PERIOD,
        as_of=PERIOD.start,
        closed=_closed(closed or []),
        open=_open(p, amount, flags),
        new=new,
        method="test",
    )


@pytest.fixture(scope="module")
def pipeline() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return rng.beta(1.0, 3.0, 2000), rng.lognormal(10.0, 1.0, 2000)


def test_independent_draws_have_the_exact_mean_and_variance(pipeline) -> None:
    p, a = pipeline
    d = simulate(_inputs(p, a, closed=[1000.0, 500.0]), rho=0.0, draws=20_000, seed=1)
    mean, sd = (p * a).sum(), np.sqrt((a**2 * p * (1 - p)).sum())
    assert d.closed_amount == 1500.0 and d.closed_count == 2
    assert abs(d.open_amount.mean() - mean) < 4 * sd / np.sqrt(20_000)
    assert d.open_amount.std() == pytest.approx(sd, rel=0.03)
    assert d.open_count.mean() == pytest.approx(p.sum(), rel=0.01)
    assert d.amount.mean() == pytest.approx(1500.0 + d.open_amount.mean())


def test_dependence_keeps_each_deals_chance_and_widens_the_total(pipeline) -> None:
    p, a = pipeline
    for q in (0.02, 0.3, 0.9):
        for rho in (0.05, 0.3):
            mean, _ = integrate.quad(
                lambda z, q=q, rho=rho: conditional_p(np.array([q]), z, rho)[0] * stats.norm.pdf(z),
                -9,
                9,
            )
            assert mean == pytest.approx(q, abs=1e-6)
    ind = simulate(_inputs(p, a), rho=0.0, draws=10_000, seed=2)
    dep = simulate(_inputs(p, a), rho=0.1, draws=10_000, seed=2)
    assert dep.open_amount.mean() == pytest.approx(ind.open_amount.mean(), rel=0.01)
    assert dep.open_amount.std() > 3 * ind.open_amount.std()


def test_draws_are_deterministic_whatever_the_threads(pipeline) -> None:
    p, a = pipeline
    one = simulate(_inputs(p, a), rho=0.05, draws=3000, seed=9, threads=1)
    two = simulate(_inputs(p, a), rho=0.05, draws=3000, seed=9, threads=2)
    np.testing.assert_array_equal(one.open_amount, two.open_amount)
    other = simulate(_inputs(p, a), rho=0.05, draws=3000, seed=10, threads=2)
    assert not np.array_equal(one.open_amount, other.open_amount)


def test_small_chunks_keep_the_law(pipeline) -> None:
    """Strata larger than a chunk are drawn in several pieces; the law stays the same."""
    p, a = pipeline
    z = np.zeros(4)
    sizes = np.array([3000, 3000, 3000, 3000])
    w = np.column_stack([a, np.ones(len(p))])
    sums = bernoulli_sums(p, w, z=z, sizes=sizes, rho=0.0, seed=3, chunk_bytes=64 * 1024)
    mean, sd = (p * a).sum(), np.sqrt((a**2 * p * (1 - p)).sum())
    assert abs(sums[:, 0].mean() - mean) < 4 * sd / np.sqrt(12_000)
    assert sums[:, 0].std() == pytest.approx(sd, rel=0.04)
    assert sums[:, 1].mean() == pytest.approx(p.sum(), rel=0.01)


def test_sure_and_impossible_deals_and_missing_amounts() -> None:
    p = np.array([1.0, 0.0, 1.0])
    a = np.array([100.0, 1e9, np.nan])
    d = simulate(_inputs(p, a), rho=0.2, draws=500, seed=0)
    assert np.all(d.open_amount == 100.0)  # the unrecorded amount adds 0 but counts
    assert np.all(d.open_count == 2)


def test_new_deals_are_a_compound_poisson_with_the_law_mean() -> None:
    law = NewDealLaw(expected_created=200.0, p_won=0.1, won_amounts=np.array([10.0, 30.0]))
    d = simulate(_inputs(np.zeros(0), np.zeros(0), new=law), rho=0.0, draws=20_000, seed=3)
    assert d.new_count.mean() == pytest.approx(20.0, rel=0.02)
    assert d.new_count.var() == pytest.approx(20.0, rel=0.05)  # Poisson
    assert d.new_amount.mean() == pytest.approx(400.0, rel=0.02)
    dep = simulate(_inputs(np.zeros(0), np.zeros(0), new=law), rho=0.2, draws=20_000, seed=3)
    assert dep.new_count.mean() == pytest.approx(20.0, rel=0.03)
    assert dep.new_count.var() > 2 * d.new_count.var()


def test_level_scales_only_the_uncertain_amounts(pipeline) -> None:
    p, a = pipeline
    base = simulate(_inputs(p, a, closed=[7.0]), rho=0.0, draws=1000, seed=4)
    up = simulate(_inputs(p, a, closed=[7.0]), rho=0.0, draws=1000, seed=4, level=1.1)
    np.testing.assert_allclose(up.open_amount, 1.1 * base.open_amount)
    np.testing.assert_array_equal(up.open_count, base.open_count)
    assert up.closed_amount == 7.0


def test_summary_quantiles_and_target() -> None:
    values = np.arange(1, 101, dtype=np.float64)
    s = summarize(values, [0.05], target=91.0)
    assert s["mean"] == 50.5 and s["p50"] == pytest.approx(50.5)
    assert s["p10"] < s["p50"] < s["p90"]
    assert set(s["quantiles"]) == {"0.05", "0.1", "0.5", "0.9"}
    assert s["p_target"] == pytest.approx(0.10)
    assert summarize(values)["p_target"] is None


def test_breakdown_and_drivers_name_the_deals_that_carry_the_forecast() -> None:
    p = np.array([0.9, 0.5, 0.1, 0.0])
    a = np.array([1000.0, 10.0, 5000.0, np.nan])
    inputs = _inputs(p, a, closed=[50.0], flags=["", "stalled", "silent,slipped", ""])
    d = simulate(inputs, rho=0.0, draws=2000, seed=0)
    b = breakdown(inputs, d)
    assert b["closed"] == {"amount": 50.0, "count": 1}
    assert b["open_pipeline"]["n_open_deals"] == 4
    assert b["open_pipeline"]["n_open_deals_without_amount"] == 1
    by_stage = {r["stage"]: r for r in b["by_stage"]}
    assert by_stage["won"]["closed"] == 50.0
    assert sum(r["expected"] for r in b["by_stage"]) == pytest.approx(50 + 900 + 5 + 500)
    dr = drivers(inputs, d, top=2)
    assert [r["deal_id"] for r in dr["expected"]] == ["D0", "D2"]
    assert dr["spread"][0]["deal_id"] == "D2"  # 5000² · 0.09 is the largest variance
    assert dr["at_risk"]["n_deals"] == 2
    assert dr["at_risk"]["expected"] == pytest.approx(505.0)
    assert dr["at_risk"]["deals"][0]["flags"] == ["silent", "slipped"]
    assert dr["at_risk"]["by_flag"]["stalled"]["expected"] == pytest.approx(5.0)
    assert dr["at_risk"]["by_flag"]["silent"]["n_deals"] == 1


def test_period_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="period-end"):
        Period.from_days("2026-11-30", "2026-11-01")
    assert PERIOD.label() == "2026-11-01..2026-11-30"
    assert PERIOD.end == pd.Timestamp("2026-12-01")


def test_bad_probabilities_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _open(np.array([0.5, np.nan]), np.array([1.0, 1.0]))


def _shared_shock_periods(
    n_periods: int, rho_true: float, seed: int
) -> list[tuple[ForecastInputs, float]]:
    """Periods whose deals win together: one shock per period moves every deal's chance
    (the one-factor law with ``rho_true``); the forecaster knows each deal's own chance."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_periods):
        n = 300
        p = rng.beta(1.0, 4.0, n)
        a = rng.lognormal(10.0, 0.8, n)
        z = rng.standard_normal()
        won = rng.random(n) < conditional_p(p, z, rho_true)
        out.append((_inputs(p, a), float(a[won].sum())))
    return out


@pytest.mark.slow
def test_without_the_dependence_term_the_80_interval_under_covers() -> None:
    """Acceptance: with a shared shock, independent draws under-cover; the ρ fitted on
    earlier periods brings the 80% coverage of later periods back to nominal."""
    periods = _shared_shock_periods(400, rho_true=0.06, seed=11)
    settings = BacktestSettings(
        draws=1000,
        rho_grid=(0.0, 0.01, 0.03, 0.06, 0.1, 0.15),
        level_grid=(1.0,),
        calibration_window=200,
    )

    def covered(inputs: ForecastInputs, actual: float, rho: float) -> bool:
        d = simulate(inputs, rho=rho, draws=settings.draws, seed=0).amount
        lo, hi = np.quantile(d, [0.1, 0.9])
        return bool(lo <= actual <= hi)

    fit_part, test_part = periods[:200], periods[200:]
    history = []
    for inputs, actual in fit_part:
        item = PeriodForecast(PERIOD, inputs, inputs, actual, 0, PERIOD.start)
        item.scale = float((inputs.open.p_won * inputs.open.booked_amount).sum())
        item.crps_grid = crps_grid(item, settings)
        history.append(item)
    rho, level = fit_calibration(history, settings)
    assert level == 1.0 and 0.03 <= rho <= 0.1
    independent = np.mean([covered(i, y, 0.0) for i, y in test_part])
    fitted = np.mean([covered(i, y, rho) for i, y in test_part])
    assert independent < 0.6  # measured: 0.41 on these 200 periods
    assert 0.72 <= fitted <= 0.88  # measured: 0.815 (rho fitted 0.06, the true value)


def test_coverage_check_says_how_loosely_few_periods_pin_the_coverage() -> None:
    """24 of 27 inside an 80% band is no evidence against 80%; 12 of 27 is."""
    loose = coverage_check(24, 27, 0.8)
    assert loose["inside"] == 24 and loose["n"] == 27
    assert loose["low_95"] < 0.8 < loose["high_95"]
    assert loose["p_value"] == pytest.approx(stats.binomtest(24, 27, 0.8).pvalue)
    assert loose["p_value"] > 0.3
    off = coverage_check(12, 27, 0.8)
    assert off["high_95"] < 0.8 and off["p_value"] < 0.001
    # many periods pin it down
    assert coverage_check(800, 1000, 0.8)["high_95"] - 0.8 < 0.03


def test_summary_metrics_carry_the_coverage_check() -> None:
    rows = [
        {"in_50": i % 2 == 0, "in_80": i % 5 != 0, "crps": 1.0, "ape_p50": None,
         "accuracy": None, "pit": 0.5}
        for i in range(20)
    ]  # fmt: skip
    s = summary_metrics(rows)
    assert s["coverage_50"] == 0.5 and s["coverage_80"] == 0.8
    assert s["coverage_check"]["50"]["inside"] == 10
    assert s["coverage_check"]["80"]["inside"] == 16
    assert s["coverage_check"]["80"]["p_value"] == pytest.approx(1.0)


def _ended_periods(
    n_periods: int, n_deals: int, a: float, b: float, seed: int
) -> list[PeriodForecast]:
    """Ended periods whose deals win with ``sigmoid(a · logit(raw) + b)``, not ``raw``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_periods):
        raw = rng.beta(1.0, 3.0, n_deals)
        won = rng.random(n_deals) < sigmoid(a * logit(raw) + b)
        inputs = _inputs(raw, np.ones(n_deals))
        out.append(PeriodForecast(PERIOD, inputs, inputs, 0.0, 0, PERIOD.start, raw_p=raw, won=won))
    return out


def test_recalibration_learns_how_the_chances_were_off_from_earlier_periods() -> None:
    history = _ended_periods(12, 1000, a=0.8, b=-0.4, seed=3)
    calibrator = fit_recalibration(history, BacktestSettings())
    assert calibrator is not None
    assert calibrator.a == pytest.approx(0.8, abs=0.08)
    assert calibrator.b == pytest.approx(-0.4, abs=0.1)
    # only the last calibration_window periods count
    shifted = _ended_periods(20, 1000, a=1.0, b=1.0, seed=4) + history
    again = fit_recalibration(shifted, BacktestSettings(calibration_window=12))
    assert again is not None and again.b == pytest.approx(calibrator.b)
    # off, or too few wins to learn from
    assert fit_recalibration(history, BacktestSettings(recalibrate=False)) is None
    assert fit_recalibration(history[:1], BacktestSettings(min_recalibration_wins=400)) is None
    assert fit_recalibration([], BacktestSettings()) is None


def test_fit_calibration_leaves_the_level_at_1_where_the_chances_are_recalibrated() -> None:
    """The level is fitted only without a recalibration; ρ is then fitted at level 1."""
    settings = BacktestSettings(rho_grid=(0.0, 0.01, 0.05), level_grid=(0.9, 1.0, 1.1))
    grid = np.array(
        [[3.0, 2.0, 9.0],
         [4.0, 1.5, 9.0],  # at level 1 ρ = 0.01 scores best
         [0.5, 1.8, 9.0]]  # ...but jointly (ρ = 0.05, level 0.9) does
    )  # fmt: skip
    history = []
    for used_level in (1.0, 0.9):
        inputs = _inputs(np.array([0.5]), np.ones(1))
        item = PeriodForecast(PERIOD, inputs, inputs, 1.0, 1, PERIOD.start, crps_grid=grid)
        item.used_level = used_level
        history.append(item)
    assert fit_calibration(history, settings, fit_level=False) == (0.01, 1.0)
    # with the level: the pair's level, and ρ on the forecasts as made (levels 1 and 0.9)
    assert fit_calibration(history, settings) == (0.05, 0.9)


def test_recalibrated_inputs_keep_impossible_and_sure_deals() -> None:
    p = np.array([0.0, 0.2, 0.5, 1.0])
    inputs = _inputs(p, np.ones(4))
    out = recalibrated(inputs, PlattCalibrator(a=1.0, b=-1.0))
    assert out.open.p_won[0] == 0.0 and out.open.p_won[3] == 1.0
    assert out.open.p_won[1] == pytest.approx(float(sigmoid(logit(0.2) - 1.0)))
    assert inputs.open.p_won[1] == 0.2  # the original is untouched
    assert list(out.open.deal_id) == list(inputs.open.deal_id)


def test_won_in_period_reads_each_deals_outcome_by_id() -> None:
    deals = pd.DataFrame(
        {
            "deal_id": ["A", "B", "C", "D"],
            "outcome": ["won", "won", "lost", "won"],
            "closed_at": pd.to_datetime(["2026-11-03", "2026-12-02", "2026-11-04", "2026-10-31"]),
        }
    )
    ids = np.array(["D", "C", "B", "A", "Z"], dtype=object)
    assert won_in_period(deals, ids, PERIOD).tolist() == [False, False, False, True, False]
