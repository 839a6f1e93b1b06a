"""The periods a manager picks on the review page: this month, this quarter, or custom."""

from __future__ import annotations

from datetime import date
from typing import Final, Literal

import pandas as pd

from models.forecast import Period

PeriodChoice = Literal["month", "quarter", "custom"]
CHOICES: Final[tuple[PeriodChoice, ...]] = ("month", "quarter", "custom")


def resolve_period(
    choice: str,
    as_of: pd.Timestamp,
    start: date | str | None = None,
    end: date | str | None = None,
) -> Period:
    """The calendar month or quarter that contains ``as_of`` (the forecast's "now": with a
    history ending on the last day of a month, that is the coming month), or the custom
    ``start``..``end`` (both days included). Raises ``ValueError`` saying what to give."""
    if choice == "month":
        first = as_of.to_period("M").start_time
        return Period(first, first + pd.DateOffset(months=1))
    if choice == "quarter":
        first = as_of.to_period("Q").start_time
        return Period(first, first + pd.DateOffset(months=3))
    if choice == "custom":
        if not start or not end:
            raise ValueError("a custom period needs both its first and its last day (YYYY-MM-DD)")
        try:
            return Period.from_days(start, end)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"the custom period {start}..{end} is not valid ({exc}); give dates as "
                "YYYY-MM-DD with the last day on or after the first"
            ) from exc
    raise ValueError(f"unknown period {choice!r}: choose one of {', '.join(CHOICES)}")


__all__ = ["CHOICES", "PeriodChoice", "resolve_period"]
