"""The time window and when leads arrive: trend, seasonality, holidays, monthly shocks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from pipelines.demo_crm import parameters as P
from pipelines.demo_crm.sampling import DAY_S, time_of_day


@dataclass(frozen=True)
class Window:
    """The history's days ``[first_day, last_day]``; the snapshot is at ``cutoff_s``.

    Times are int64 seconds since 1970-01-01 (naive UTC). ``day_month`` maps each day to
    its calendar month index; ``month_starts`` are those months' first days.
    """

    days: np.ndarray  # datetime64[D]
    day_month: np.ndarray  # int, index into month_starts
    month_starts: np.ndarray  # datetime64[D]
    cutoff_s: int

    @property
    def first_s(self) -> int:
        return int(self.days[0].astype(np.int64)) * DAY_S


def make_window(end_date: date, years: float) -> Window:
    """The ``round(years·365.25)`` days ending with ``end_date`` (inclusive)."""
    last = np.datetime64(end_date, "D")
    n_days = max(1, round(years * 365.25))
    days = last - np.arange(n_days - 1, -1, -1)
    months = days.astype("datetime64[M]")
    month_starts, day_month = np.unique(months, return_inverse=True)
    cutoff_s = (int(last.astype(np.int64)) + 1) * DAY_S
    return Window(days, day_month, month_starts.astype("datetime64[D]"), cutoff_s)


def _holiday_factor(days: np.ndarray) -> np.ndarray:
    factor = np.ones(len(days))
    years = days.astype("datetime64[Y]").astype(int) + 1970
    for year in np.unique(years):
        spring = np.datetime64(P.SPRING_FESTIVAL.get(int(year), f"{year}-02-05"), "D")
        for start, stop, f in P.SPRING_FESTIVAL_DIP:
            offset = (days - spring).astype(int)
            factor[(offset >= start) & (offset <= stop)] = f
    month_day = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(int) + 1
    month = days.astype("datetime64[M]").astype(int) % 12 + 1
    factor[(month == 10) & (month_day <= 7)] *= P.GOLDEN_WEEK_FACTOR
    factor[(month == 5) & (month_day <= 5)] *= P.LABOUR_DAY_FACTOR
    return factor


def day_weights(window: Window) -> np.ndarray:
    """Relative expected lead volume per day, before the monthly shock."""
    days = window.days
    years_in = (days - days[0]).astype(float) / 365.25
    trend = np.exp(np.log(P.ANNUAL_GROWTH) * years_in)
    month = days.astype("datetime64[M]").astype(int) % 12
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday (index 3)
    return trend * P.MONTH_FACTOR[month] * P.WEEKDAY_FACTOR[weekday] * _holiday_factor(days)


def monthly_shocks(rng: np.random.Generator, n_months: int, sd: float) -> np.ndarray:
    """z_m ~ N(0, sd²) per month: multiplies the month's volume by exp(z_m), adds to logits."""
    return rng.normal(0.0, sd, size=n_months) if sd > 0 else np.zeros(n_months)


def creation_times(
    rng: np.random.Generator, window: Window, shocks: np.ndarray, n: int
) -> np.ndarray:
    """``n`` lead creation times (int64 seconds, sorted) over the window.

    The number per day is multinomial with weights ``day_weights · exp(z_month)``; times of
    day follow office hours.
    """
    weights = day_weights(window) * np.exp(shocks[window.day_month])
    counts = rng.multinomial(n, weights / weights.sum())
    day_s = np.repeat(window.days.astype(np.int64) * DAY_S, counts)
    return np.sort(day_s + time_of_day(rng, n))


def month_of(window: Window, t_s: np.ndarray) -> np.ndarray:
    """Index into ``window.month_starts`` of each time (which must lie in the window)."""
    day_index = (t_s - window.first_s) // DAY_S
    return window.day_month[day_index]
