"""The stage-weighted forecast: amount × the historical win rate of the deal's stage.

This is the weighted pipeline that CRMs such as HubSpot show: each open deal whose
expected close date (as the rep had it at ``as_of``) falls inside the period counts for its
amount times the win rate of its current stage; deals dated outside the period, or with no
date, count for nothing, and deals not yet created are not forecast. Leadcast uses it as
the fallback when no close-time model can serve and as the baseline in every report; its
spread treats the deals as independent Bernoulli draws with those rates.

A stage's win rate is the share won among the deals that were in that stage and closed
in the ``lookback_days`` before ``as_of`` (won or lost; still-open deals are not counted);
a stage with fewer than ``min_deals`` such deals takes the rate of all of them.
Leakage: only deals closed before ``as_of`` and stage entries before it are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from data_contracts import tables as T
from data_contracts.vocabulary import OPEN_STAGES

METHOD: Final = "stage_weighted"


@dataclass(frozen=True)
class StageWinRates:
    """Win rate per open stage, the pooled rate, and how many closed deals set each."""

    rates: dict[str, float]
    counts: dict[str, int]
    pooled: float
    n_closed: int

    def of(self, stages: np.ndarray) -> np.ndarray:
        """The rate of each stage (the pooled rate for rare, missing or unknown ones)."""
        return np.array([self.rates.get(str(s), self.pooled) for s in stages], dtype=np.float64)

    def to_dict(self) -> dict[str, object]:
        return {
            "rates": self.rates,
            "counts": self.counts,
            "pooled": self.pooled,
            "n_closed": self.n_closed,
        }


def stage_win_rates(
    deals: pd.DataFrame,
    stage_history: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    lookback_days: int = 365,
    min_deals: int = 20,
) -> StageWinRates:
    """Win rates per stage from the deals closed in ``[as_of − lookback_days, as_of)``."""
    closed_at = deals[T.CLOSED_AT]
    outcome = deals[T.OUTCOME].astype("str")
    recent = deals[
        closed_at.notna()
        & (closed_at < as_of)
        & (closed_at >= as_of - pd.Timedelta(days=lookback_days))
        & outcome.isin(["won", "lost"])
    ]
    won = recent.set_index(T.DEAL_ID)[T.OUTCOME].astype("str") == "won"
    pooled = float(won.mean()) if len(won) else 0.0
    entries = stage_history[
        stage_history[T.DEAL_ID].isin(won.index)
        & (stage_history[T.ENTERED_AT] < as_of)
        & stage_history[T.STAGE].astype("str").isin(OPEN_STAGES)
    ]
    pairs = entries[[T.DEAL_ID, T.STAGE]].astype("str").drop_duplicates()
    pairs = pairs.assign(won=won.reindex(pairs[T.DEAL_ID]).to_numpy(dtype=bool))
    by_stage = pairs.groupby(T.STAGE)["won"].agg(["mean", "size"])
    rates, counts = {}, {}
    for stage in OPEN_STAGES:
        n = int(by_stage["size"].get(stage, 0))
        counts[stage] = n
        rates[stage] = float(by_stage["mean"][stage]) if n >= min_deals else pooled
    return StageWinRates(rates=rates, counts=counts, pooled=pooled, n_closed=len(won))


def stage_weighted_p(
    stages: np.ndarray,
    days_to_expected_close: np.ndarray,
    *,
    as_of: pd.Timestamp,
    start: pd.Timestamp,
    end: pd.Timestamp,
    rates: StageWinRates,
) -> np.ndarray:
    """Each open deal's weight: its stage's rate when its expected close date (``as_of``'s
    day + ``days_to_expected_close``) is inside ``[start, end)``, else 0."""
    day0 = as_of.normalize()
    days = np.asarray(days_to_expected_close, dtype=np.float64)
    lo = (start - day0) / pd.Timedelta(days=1)
    hi = (end - day0) / pd.Timedelta(days=1)
    inside = ~np.isnan(days) & (days >= lo) & (days < hi)
    return np.where(inside, rates.of(stages), 0.0)


__all__ = ["METHOD", "StageWinRates", "stage_weighted_p", "stage_win_rates"]
