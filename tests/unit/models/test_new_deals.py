"""New-deal law and the stage-weighted rule on hand-built histories with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.forecast import Period
from models.new_deals import (
    NewDealSettings,
    creation_rate,
    new_deal_law,
    won_amount_pool,
    won_incidence_from_creation,
)
from models.stage_weighted import stage_weighted_p, stage_win_rates

AS_OF = pd.Timestamp("2026-11-01")


def _deals(
    created: pd.Series, closed: pd.Series, outcome: list[str], amount: np.ndarray
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "deal_id": [f"D{i}" for i in range(len(created))],
            "created_at": created.to_numpy(),
            "closed_at": closed.to_numpy(),
            "outcome": outcome,
            "amount": amount,
        }
    )


def _poisson_history(seed: int = 0) -> pd.DataFrame:
    """Two years of creations: 6 a day on weekdays, 1 on weekends; every deal is won
    exactly 10 days after creation for 100.0, or lost after 20 days (half each)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(AS_OF - pd.Timedelta(days=730), AS_OF - pd.Timedelta(days=1))
    counts = rng.poisson(np.where(days.day_of_week < 5, 6.0, 1.0))
    created = pd.Series(np.repeat(days.to_numpy(), counts)) + pd.Timedelta(hours=10)
    won = rng.random(len(created)) < 0.5
    closed = created + pd.to_timedelta(np.where(won, 10, 20), unit="D")
    outcome = np.where(won, "won", "lost")
    still_open = closed >= AS_OF  # not known yet at as_of
    closed = closed.mask(still_open)
    outcome = np.where(still_open.to_numpy(), "open", outcome)
    return _deals(created, closed, list(outcome), np.full(len(created), 100.0))


def test_creation_rate_recovers_the_weekday_pattern() -> None:
    deals = _poisson_history()
    days, rate, detail = creation_rate(
        deals, AS_OF, AS_OF + pd.Timedelta(days=28), NewDealSettings()
    )
    assert detail["fitted"] and len(days) == 28
    weekday = days.day_of_week < 5
    assert rate[weekday].mean() == pytest.approx(6.0, rel=0.08)
    assert rate[~weekday].mean() == pytest.approx(1.0, rel=0.25)


def _created_only(daily_rate: np.ndarray, days: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    """Open deals created at Poisson(``daily_rate``) a day (nothing closed yet)."""
    counts = np.random.default_rng(seed).poisson(daily_rate)
    created = pd.Series(np.repeat(days.to_numpy(), counts)) + pd.Timedelta(hours=10)
    n = len(created)
    return _deals(created, pd.Series([pd.NaT] * n), ["open"] * n, np.full(n, 100.0))


def test_a_short_history_that_starts_with_a_ramp_up_gets_the_recent_level() -> None:
    """300 days: creations ramp from 1 to 12 a day over the first 150, then stay at 12.
    With under two years no trend is extrapolated: the forecast is the recent level. A
    log-linear trend fitted through the ramp would forecast well above 12 a day."""
    days = pd.date_range(end=AS_OF - pd.Timedelta(days=1), periods=300)
    deals = _created_only(np.minimum(1.0 + 11.0 * np.arange(300) / 150, 12.0), days, 1)
    future, rate, detail = creation_rate(
        deals, AS_OF, AS_OF + pd.Timedelta(days=28), NewDealSettings()
    )
    assert len(future) == 28 and detail["fit"] == "recent level with weekday terms"
    assert detail["fit_days"] == 91 and "under the 730" in detail["why"]
    assert rate.mean() == pytest.approx(12.0, rel=0.1)


def test_two_years_of_history_fit_the_month_of_year() -> None:
    """Three years at 6 a day, 12 a day every December: from two years of history on, the
    month terms carry the December peak into the forecast of December (and no trend)."""
    days = pd.date_range(end=AS_OF - pd.Timedelta(days=1), periods=3 * 365)
    deals = _created_only(np.where(days.month == 12, 12.0, 6.0), days, 2)
    until = AS_OF + pd.Timedelta(days=61)  # November and December
    future, rate, detail = creation_rate(deals, AS_OF, until, NewDealSettings())
    assert detail["fit"] == "trend, weekday and month terms" and detail["fit_days"] == 730
    assert detail["trend_per_year"] == pytest.approx(0.0, abs=0.1)
    december = future.month == 12
    assert rate[december].mean() == pytest.approx(12.0, rel=0.1)
    assert rate[~december].mean() == pytest.approx(6.0, rel=0.1)
    # told to wait for more history than it has, it forecasts the recent level instead
    _, level, detail = creation_rate(deals, AS_OF, until, NewDealSettings(season_days=800))
    assert detail["fit"] == "recent level with weekday terms"
    assert level.mean() == pytest.approx(6.0, rel=0.1)


def test_new_deal_law_counts_the_wins_that_land_inside_the_period() -> None:
    deals = _poisson_history()
    period = Period.from_days("2026-11-01", "2026-11-30")
    law = new_deal_law(deals, AS_OF, period)
    # creations over the 30 days: ~ 6·(22 weekdays)+1·(8 weekend days) = 140
    assert law.expected_created == pytest.approx(140.0, rel=0.08)
    # won 10 days after creation: only deals created in the first 20 days can land inside,
    # half of them win: 0.5 · 20/30 of the creations (weekday mix aside)
    assert law.p_won == pytest.approx(0.5 * 20 / 30, abs=0.04)
    assert np.all(law.won_amounts == 100.0)
    # a period that starts later: deals created before it may win before it starts
    later = new_deal_law(deals, AS_OF, Period.from_days("2026-11-16", "2026-11-30"))
    assert later.expected_won < law.expected_won


def test_open_deals_are_censored_not_counted_as_lost() -> None:
    """Deals created over the last 120 days win at day 30 or lose at day 40 (half each):
    at as_of a quarter of them is still open. Censored, the won incidence after day 30 is
    one half; counting the open ones as lost would give 0.375."""
    created = pd.Series(
        pd.date_range(end=AS_OF - pd.Timedelta(hours=1), periods=1200, freq="144min")
    )
    won = np.arange(1200) % 2 == 0
    closed = created + pd.to_timedelta(np.where(won, 30, 40), unit="D")
    outcome = np.where(won, "won", "lost")
    still_open = (closed >= AS_OF).to_numpy()
    deals = _deals(
        created,
        closed.mask(still_open),
        list(np.where(still_open, "open", outcome)),
        np.full(1200, 100.0),
    )
    assert 0.2 < still_open.mean() < 0.35
    g, n = won_incidence_from_creation(deals, AS_OF, 8, NewDealSettings())
    assert n == 1200
    assert g[0, 5] == pytest.approx(0.5, abs=0.03)  # end of week 6: every win is in


def test_fast_wins_set_the_amount_pool_when_there_are_enough() -> None:
    created = pd.Series(pd.date_range("2026-01-01", periods=100, freq="D"))
    cycle = np.where(np.arange(100) < 50, 5, 90)
    closed = created + pd.to_timedelta(cycle, unit="D")
    amount = np.where(cycle == 5, 10.0, 1000.0)
    deals = _deals(created, closed, ["won"] * 100, amount)
    pool, rule = won_amount_pool(deals, AS_OF, 30.0, NewDealSettings(min_fast_wins=30))
    assert np.all(pool == 10.0) and "within 30 days" in rule
    pool, rule = won_amount_pool(deals, AS_OF, 30.0, NewDealSettings(min_fast_wins=60))
    assert len(pool) == 100 and "all recent" in rule


def test_stage_win_rates_and_weights() -> None:
    created = pd.Series(pd.to_datetime(["2026-01-01"] * 4))
    closed = pd.Series(pd.to_datetime(["2026-03-01"] * 4))
    deals = _deals(created, closed, ["won", "lost", "lost", "won"], np.ones(4))
    history = pd.DataFrame(
        {
            "deal_id": ["D0", "D0", "D1", "D1", "D2", "D3", "D3"],
            "stage": [
                "qualification",
                "proposal",
                "qualification",
                "proposal",
                "qualification",
                "qualification",
                "won",
            ],
            "entered_at": pd.to_datetime(["2026-01-01", "2026-02-01"] * 3 + ["2026-01-01"]),
        }
    )
    rates = stage_win_rates(deals, history, AS_OF, min_deals=2)
    assert rates.rates["qualification"] == pytest.approx(0.5)  # D0, D3 won of 4
    assert rates.rates["proposal"] == pytest.approx(0.5)  # D0 won, D1 lost
    assert rates.rates["negotiation"] == rates.pooled == pytest.approx(0.5)
    assert rates.counts["proposal"] == 2
    # a deal counts only when its expected close date falls inside the period
    p = stage_weighted_p(
        np.array(["proposal", "proposal", "proposal", "proposal"], dtype=object),
        np.array([0.0, 29.0, 30.0, np.nan]),
        as_of=AS_OF,
        start=AS_OF,
        end=AS_OF + pd.Timedelta(days=30),
        rates=rates,
    )
    np.testing.assert_allclose(p, [0.5, 0.5, 0.0, 0.0])
    # nothing closed after as_of is read
    later = deals.assign(closed_at=pd.Timestamp("2026-12-01"))
    assert stage_win_rates(later, history, AS_OF).n_closed == 0
