"""Snapshots of open deals, their follow-up (censored or won / lost), and the weekly rows.

A snapshot is a deal seen at a time ``as_of`` while it is open (not closed at or before
``as_of``): an hour after creation and then every ``every_days`` days, up to
``max_snapshots`` per deal. Its follow-up runs from ``as_of`` to the deal's close or to the
end of what its part of the split may see, whichever comes first; a deal still open then is
**censored** (event :data:`~models.competing_risks.CENSORED`), never counted as lost.

The split is by snapshot time, and each part's follow-up stops where the next part begins,
so no outcome used for fitting lies in a later part::

    train snapshots   as_of <  validation_start     follow-up censored at validation_start
    validation        [validation_start, validation_end)   follow-up censored at test_start
    test              [test_start, test_end]               follow-up to the end of the data

``validation_end`` and ``test_end`` lie ``label_days`` (90) before the follow-up ends, so
every validation and test snapshot has a complete 90-day window (calibration and the 90-day
metrics need no censoring correction there); longer horizons may still be censored.

``person_period`` expands snapshots into one row per (snapshot, week k) while the deal is
open and observed: the label is won / lost when the deal closed in that week, else open. A
week cut short by censoring is kept as "open" with a weight equal to the observed fraction
of the week (the actuarial correction), so censoring neither inflates nor deflates hazards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from data_contracts import tables as T
from features.lead_features import AS_OF
from models.competing_risks import CENSORED, LOST, WEEK_DAYS, WON

TIME: Final = "time_days"
EVENT: Final = "event"
WEEK: Final = "week"
SPLIT: Final = "split"
SNAPSHOT_INDEX: Final = "snapshot_index"
SNAPSHOT_ROW: Final = "snapshot_row"
WEIGHT: Final = "weight"
_DAY_US: Final = 86_400e6
_OUTCOME_EVENT: Final = {"won": WON, "lost": LOST}


class DealSnapshotSettings(BaseModel):
    """How deal snapshots are taken and split (days unless stated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_weeks: int = Field(default=26, ge=4, le=104, description="model horizon (weeks)")
    every_days: int = Field(default=14, gt=0)
    max_snapshots: int = Field(default=12, gt=0)
    first_offset_hours: float = Field(default=1.0, gt=0)
    label_days: int = Field(default=90, gt=0, description="complete window of val/test rows")
    test_days: int = Field(default=91, gt=0)
    validation_days: int = Field(default=91, gt=0)


@dataclass(frozen=True)
class DealWindows:
    """Snapshot ranges and follow-up ends of each part (timestamps)."""

    data_end: pd.Timestamp
    validation_start: pd.Timestamp
    validation_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def follow_up_end(self, split: str) -> pd.Timestamp:
        return {
            "train": self.validation_start,
            "validation": self.test_start,
            "test": self.data_end,
        }[split]

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


def deal_windows(data_end: pd.Timestamp, settings: DealSnapshotSettings) -> DealWindows:
    """Test: the last ``test_days`` of snapshot times with a complete ``label_days`` window;
    validation: the ``validation_days`` whose window completes before the test starts."""
    day = pd.Timedelta(days=1)
    test_end = data_end - settings.label_days * day
    test_start = test_end - settings.test_days * day
    validation_end = test_start - settings.label_days * day
    validation_start = validation_end - settings.validation_days * day
    return DealWindows(data_end, validation_start, validation_end, test_start, test_end)


def _to_us(values: pd.Series) -> np.ndarray:
    return values.to_numpy("datetime64[us]")


def open_deal_snapshots(
    deals: pd.DataFrame, settings: DealSnapshotSettings, until: pd.Timestamp
) -> pd.DataFrame:
    """Every snapshot of a deal that is open at its ``as_of`` (``as_of < until``): the
    deal's columns plus ``as_of`` and ``snapshot_index``. Reads ``closed_at`` only to decide
    openness; it must not be passed on as a feature."""
    created = _to_us(deals[T.CREATED_AT])
    closed = _to_us(deals[T.CLOSED_AT])
    n, m = len(deals), settings.max_snapshots
    rows = np.repeat(np.arange(n), m)
    idx = np.tile(np.arange(m), n)
    offset = np.timedelta64(int(settings.first_offset_hours * 3_600e6), "us")
    as_of = created[rows] + offset + (idx * settings.every_days).astype("timedelta64[D]")
    end = np.datetime64(until.to_datetime64(), "us")
    c = closed[rows]
    keep = (np.isnat(c) | (c > as_of)) & (as_of < end)
    out = deals.iloc[rows[keep]].reset_index(drop=True)
    out[AS_OF] = as_of[keep]
    out[SNAPSHOT_INDEX] = idx[keep].astype(np.int16)
    return out


def follow_up(
    snapshots: pd.DataFrame, follow_up_end: np.ndarray | pd.Timestamp
) -> tuple[np.ndarray, np.ndarray]:
    """``(time_days, event)`` per snapshot: days from ``as_of`` to the close when it is at or
    before ``follow_up_end`` (event won / lost), else to ``follow_up_end`` (censored)."""
    as_of = _to_us(snapshots[AS_OF])
    closed = _to_us(snapshots[T.CLOSED_AT])
    if isinstance(follow_up_end, pd.Timestamp):
        end = np.full(len(snapshots), np.datetime64(follow_up_end.to_datetime64(), "us"))
    else:
        end = np.asarray(follow_up_end).astype("datetime64[us]")
    outcome = snapshots[T.OUTCOME].astype("str").to_numpy(object)
    code = np.array([_OUTCOME_EVENT.get(o, CENSORED) for o in outcome], dtype=np.int8)
    seen = ~np.isnat(closed) & (closed <= end) & (code != CENSORED)
    stop = np.where(seen, closed, end)
    time = (stop - as_of).astype(np.int64) / _DAY_US
    event = np.where(seen, code, CENSORED).astype(np.int8)
    return time, event


def split_snapshots(
    deals: pd.DataFrame, windows: DealWindows, settings: DealSnapshotSettings
) -> dict[str, pd.DataFrame]:
    """Train / validation / test snapshots with ``time_days`` and ``event`` (see module)."""
    snaps = open_deal_snapshots(deals, settings, windows.data_end)
    t = snaps[AS_OF]
    masks = {
        "train": t < windows.validation_start,
        "validation": (t >= windows.validation_start) & (t < windows.validation_end),
        "test": (t >= windows.test_start) & (t <= windows.test_end),
    }
    parts: dict[str, pd.DataFrame] = {}
    for name, mask in masks.items():
        part = snaps[mask.to_numpy()].reset_index(drop=True)
        time, event = follow_up(part, windows.follow_up_end(name))
        part[TIME] = time
        part[EVENT] = event
        part[SPLIT] = name
        parts[name] = part[part[TIME] > 0].reset_index(drop=True)
    return parts


@dataclass(frozen=True)
class PersonPeriod:
    """Weekly rows of snapshots: which snapshot, which week, the class and the weight."""

    snapshot_row: np.ndarray  # index into the snapshot frame
    week: np.ndarray
    label: np.ndarray  # 0 open, 1 won, 2 lost
    weight: np.ndarray


def person_period(
    time: np.ndarray, event: np.ndarray, horizon_weeks: int, *, naive_open_as_lost: bool = False
) -> PersonPeriod:
    """Expand snapshots into weekly rows up to ``horizon_weeks`` (see the module docstring).

    ``naive_open_as_lost=True`` reproduces the common mistake of treating a deal still open
    at the end of observation as lost then; it exists only to show what it costs.
    """
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(event, dtype=np.int8).copy()
    if naive_open_as_lost:
        e[e == CENSORED] = LOST
    week_of_stop = np.floor(t / WEEK_DAYS).astype(np.int64)
    # weeks 0..week_of_stop (the week holding the stop), capped at the horizon
    n_rows = np.minimum(week_of_stop + 1, horizon_weeks)
    rows = np.repeat(np.arange(len(t)), n_rows)
    starts = np.concatenate([[0], np.cumsum(n_rows)[:-1]])
    week = np.arange(len(rows)) - np.repeat(starts, n_rows)
    last = week == week_of_stop[rows]
    label = np.where(last, e[rows], CENSORED).astype(np.int8)
    weight = np.ones(len(rows))
    censored_part = last & (e[rows] == CENSORED)
    weight[censored_part] = (t[rows][censored_part] - week[censored_part] * WEEK_DAYS) / WEEK_DAYS
    keep = weight > 0
    return PersonPeriod(rows[keep], week[keep].astype(np.int16), label[keep], weight[keep])
