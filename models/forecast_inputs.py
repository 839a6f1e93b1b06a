"""The deals of a forecast as known at ``as_of``: closed, open (with their chances), new.

One path for the live forecast, the backtest and the service: :func:`snapshot_pipeline`
reads the tables at ``as_of`` (point-in-time deal features from the shared feature
function), then :func:`model_inputs` gives each open deal its chance of being won inside
the period from the close-time model's won curve, ``F(end − as_of) − F(start − as_of)``,
and :func:`stage_weighted_inputs` gives the baseline's weights.

The curve's own calibration exists only at 30 / 60 / 90 days from a snapshot, not for
"won inside this period". :func:`recalibrated` maps the chances through a Platt
calibrator that the backtest fits on what earlier periods' open deals actually did
(:func:`won_in_period`; :mod:`models.backtest`).

Leakage: open deals are those created before ``as_of`` and not closed by it; ``closed_at``
and ``outcome`` decide only that (and the closed part of the period, which is known).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import pandas as pd

from data_contracts import tables as T
from features.deal_features import OwnerDealHistory, build_close_time_features, build_deal_features
from models.calibration import Calibrator
from models.close_time import CloseTimeModel, open_deals_at
from models.competing_risks import WEEK_DAYS, curve_at
from models.forecast import ClosedDeals, ForecastInputs, OpenDeals, Period
from models.new_deals import NewDealSettings, new_deal_law
from models.stage_weighted import METHOD as STAGE_WEIGHTED
from models.stage_weighted import StageWinRates, stage_weighted_p

MODEL_METHOD: Final = "close_time_model"
_DAY: Final = pd.Timedelta(days=1)


class ForecastWindowError(ValueError):
    """The period cannot be forecast from this ``as_of`` (what to change is in the text)."""


@dataclass(frozen=True)
class PipelineSnapshot:
    """The deals as they stood at ``as_of``."""

    as_of: pd.Timestamp
    period: Period
    closed: pd.DataFrame  # won in [period.start, as_of)
    open: pd.DataFrame  # open at as_of, with an as_of column
    raw: pd.DataFrame  # point-in-time features of ``open`` (same index)


def _text(values: pd.Series) -> np.ndarray:
    out = values.astype("str").to_numpy(object)
    out[values.isna().to_numpy(dtype=bool)] = None
    return out


def snapshot_pipeline(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp,
    period: Period,
    *,
    model: CloseTimeModel | None = None,
    owner_deals: OwnerDealHistory | None = None,
) -> PipelineSnapshot:
    """Closed and open deals at ``as_of`` with the open deals' features (the close-time
    model's features when a model is given, else the deal features only)."""
    if as_of >= period.end:
        raise ForecastWindowError(
            f"as-of {as_of} is not before the end of the period {period.label()}: the "
            "period is already booked. Pick an earlier --as-of or a later period."
        )
    if model is not None and period.end - as_of > model.horizon_weeks * WEEK_DAYS * _DAY:
        raise ForecastWindowError(
            f"the period {period.label()} ends more than the model's horizon "
            f"({model.horizon_weeks} weeks) after as-of {as_of.date()}. Forecast a nearer "
            "period, or train the close-time model with a longer --horizon-weeks."
        )
    deals = tables["deals"]
    closed_at = deals[T.CLOSED_AT]
    closed = deals[
        (deals[T.OUTCOME].astype("str") == "won")
        & (closed_at >= period.start)
        & (closed_at <= as_of)  # a close stamped at as_of is known then (open_deals_at agrees)
        & (closed_at < period.end)
    ]
    open_ = open_deals_at(deals, as_of)
    owners = owner_deals if owner_deals is not None else OwnerDealHistory.from_deals(deals)
    if model is not None:
        raw = build_close_time_features(
            open_,
            leads=tables["leads"],
            stage_history=tables["stage_history"],
            activities=tables["activities"],
            owner_deals=owners,
            deal_custom=model.deal_custom,
            lead_custom=model.lead_custom,
        )
    else:
        raw = build_deal_features(open_, tables["stage_history"], tables["activities"], owners)
    return PipelineSnapshot(as_of, period, closed, open_, raw)


def _closed(snap: PipelineSnapshot) -> ClosedDeals:
    c = snap.closed
    return ClosedDeals(
        deal_id=c[T.DEAL_ID].astype("str").to_numpy(object),
        amount=c[T.AMOUNT].to_numpy(np.float64, na_value=np.nan),
        stage=np.full(len(c), "won", dtype=object),
        owner=_text(c[T.OWNER_ID]),
        product=_text(c[T.PRODUCT]),
    )


def _open(snap: PipelineSnapshot, p_won: np.ndarray, flags: np.ndarray) -> OpenDeals:
    o = snap.open
    return OpenDeals(
        deal_id=o[T.DEAL_ID].astype("str").to_numpy(object),
        amount=o[T.AMOUNT].to_numpy(np.float64, na_value=np.nan),
        p_won=np.clip(p_won, 0.0, 1.0),
        stage=snap.raw["current_stage"].to_numpy(dtype=object),
        owner=_text(o[T.OWNER_ID]),
        product=_text(o[T.PRODUCT]),
        flags=flags,
    )


def model_inputs(
    snap: PipelineSnapshot,
    model: CloseTimeModel,
    tables: dict[str, pd.DataFrame],
    *,
    new_settings: NewDealSettings | None = None,
) -> ForecastInputs:
    """Forecast inputs from the close-time model (open deals), the new-deal law, and the
    risk flags of each open deal."""
    period, as_of = snap.period, snap.as_of
    if len(snap.open):
        out = model.outlook(model.encoder.transform(snap.raw))
        to_end = (period.end - as_of) / _DAY
        to_start = max((period.start - as_of) / _DAY, 0.0)
        p = curve_at(out.cif_won, to_end) - curve_at(out.cif_won, to_start)
        days_to = snap.raw["days_to_expected_close"].to_numpy(np.float64)
        flag_rows = model.flags(snap.raw, out.won_by_expected(days_to))
        flags = np.array([",".join(f.code for f in row) for row in flag_rows], dtype=object)
    else:
        p, flags = np.zeros(0), np.zeros(0, dtype=object)
    return ForecastInputs(
        period=period,
        as_of=as_of,
        closed=_closed(snap),
        open=_open(snap, p, flags),
        new=new_deal_law(tables["deals"], as_of, period, new_settings),
        method=MODEL_METHOD,
    )


def stage_weighted_inputs(snap: PipelineSnapshot, rates: StageWinRates) -> ForecastInputs:
    """The stage-weighted forecast's inputs (see :mod:`models.stage_weighted`)."""
    p = stage_weighted_p(
        snap.raw["current_stage"].to_numpy(dtype=object),
        snap.raw["days_to_expected_close"].to_numpy(np.float64),
        as_of=snap.as_of,
        start=snap.period.start,
        end=snap.period.end,
        rates=rates,
    )
    notes = []
    undated = int(snap.raw["days_to_expected_close"].isna().sum())
    if undated:
        notes.append(
            f"{undated} open deals have no expected close date and count for nothing in the "
            "stage-weighted forecast"
        )
    return ForecastInputs(
        period=snap.period,
        as_of=snap.as_of,
        closed=_closed(snap),
        open=_open(snap, p, np.full(len(p), "", dtype=object)),
        new=None,
        method=STAGE_WEIGHTED,
        notes=notes,
    )


def recalibrated(inputs: ForecastInputs, calibrator: Calibrator) -> ForecastInputs:
    """``inputs`` with each open deal's chance mapped through ``calibrator``; deals that
    cannot be won in the period (chance 0) or are sure (1) keep their chance."""
    p = inputs.open.p_won
    q = np.where(p <= 0, 0.0, np.where(p >= 1, 1.0, calibrator.predict(p)))
    return replace(inputs, open=replace(inputs.open, p_won=q))


def _won_in(deals: pd.DataFrame, period: Period) -> pd.Series:
    """Which deals were won inside ``period`` (known once it is over)."""
    closed_at = deals[T.CLOSED_AT]
    return (
        (deals[T.OUTCOME].astype("str") == "won")
        & (closed_at >= period.start)
        & (closed_at < period.end)
    )


def won_in_period(deals: pd.DataFrame, deal_ids: np.ndarray, period: Period) -> np.ndarray:
    """Per deal id (as in :class:`OpenDeals`), whether the deal was won inside ``period``.
    Known once the period is over; unknown ids count as not won."""
    won_ids = deals.loc[_won_in(deals, period), T.DEAL_ID].astype("str").to_numpy(object)
    return np.isin(np.asarray(deal_ids, dtype=object), won_ids)


def booked(deals: pd.DataFrame, period: Period) -> tuple[float, int]:
    """What was actually booked in ``period``: the sum of recorded amounts of the deals won
    in it, and their number (used by the backtest; needs the period to be over)."""
    won = deals[_won_in(deals, period)]
    return float(np.nansum(won[T.AMOUNT].to_numpy(np.float64, na_value=np.nan))), len(won)


def booked_by_part(deals: pd.DataFrame, period: Period, as_of: pd.Timestamp) -> dict[str, float]:
    """What ``period`` actually booked, split as the forecast made at ``as_of`` splits it:
    ``closed`` (won in the period at or before ``as_of``, as :func:`snapshot_pipeline`
    counts it), ``open`` (won later by deals created before ``as_of``: the open pipeline
    then) and ``new`` (won by deals created at or after ``as_of``). The parts add up to
    :func:`booked`'s sum. Needs the period to be over."""
    won = deals[_won_in(deals, period)]
    amount = won[T.AMOUNT].to_numpy(np.float64, na_value=np.nan)
    at = np.datetime64(pd.Timestamp(as_of).to_datetime64(), "us")
    closed = won[T.CLOSED_AT].to_numpy("datetime64[us]") <= at
    created = won[T.CREATED_AT].to_numpy("datetime64[us]") < at
    return {
        "closed": float(np.nansum(amount[closed])),
        "open": float(np.nansum(amount[~closed & created])),
        "new": float(np.nansum(amount[~closed & ~created])),
    }


__all__ = [
    "MODEL_METHOD",
    "ForecastWindowError",
    "PipelineSnapshot",
    "booked",
    "booked_by_part",
    "model_inputs",
    "recalibrated",
    "snapshot_pipeline",
    "stage_weighted_inputs",
    "won_in_period",
]
