"""Training snapshots of open leads, their 90-day labels, and the time-ordered split.

A snapshot is a lead seen at a time ``as_of`` while it is still open (not converted or
disqualified before ``as_of``): at creation and then every ``every_days`` days, up to
``max_snapshots`` per lead. Its label is 1 when the lead converts within ``horizon_days``
after ``as_of``. Snapshots whose label window runs past the end of the data are censored:
they are left out, never labelled negative.

The split is by snapshot time: train < validation < test, the test being the most recent
months with a complete label window, and a purge gap of one label horizon between the
parts so that no training label resolves inside the validation or test period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from data_contracts import tables as T
from features.lead_features import AS_OF

LABEL: Final = "label"
SNAPSHOT_INDEX: Final = "snapshot_index"
SPLIT: Final = "split"


class SnapshotSettings(BaseModel):
    """How snapshots are taken and split (all in days)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_days: int = Field(default=90, gt=0)
    every_days: int = Field(default=14, gt=0)
    max_snapshots: int = Field(default=7, gt=0)
    test_days: int = Field(default=91, gt=0)
    validation_days: int = Field(default=91, gt=0)
    gap_days: int | None = Field(
        default=None, description="purge gap between parts; default: the label horizon"
    )


@dataclass(frozen=True)
class SplitWindows:
    """The as_of ranges of each part (half-open ``[start, end)``), and the data end."""

    data_end: pd.Timestamp
    train_end: pd.Timestamp
    validation_start: pd.Timestamp
    validation_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


def split_windows(data_end: pd.Timestamp, settings: SnapshotSettings) -> SplitWindows:
    """Test: the last ``test_days`` of as_of times whose label window ends by ``data_end``;
    validation: the ``validation_days`` before, after a purge gap; train: before that."""
    day = pd.Timedelta(days=1)
    gap = (settings.gap_days if settings.gap_days is not None else settings.horizon_days) * day
    test_end = data_end - settings.horizon_days * day
    test_start = test_end - settings.test_days * day
    validation_end = test_start - gap
    validation_start = validation_end - settings.validation_days * day
    train_end = validation_start - gap
    return SplitWindows(data_end, train_end, validation_start, validation_end, test_start, test_end)


def lead_snapshots(
    leads: pd.DataFrame, data_end: pd.Timestamp, settings: SnapshotSettings
) -> pd.DataFrame:
    """Labelled snapshots of open leads: the lead's columns plus ``as_of``, ``label`` and
    ``snapshot_index`` (0 = at creation). Censored snapshots (label window past
    ``data_end``) are dropped. Uses outcome columns only to decide openness at ``as_of``
    and the label; they must not be passed on as features."""
    created = leads[T.CREATED_AT].to_numpy("datetime64[us]")
    converted = leads[T.CONVERTED_AT].to_numpy("datetime64[us]")
    disqualified = leads[T.DISQUALIFIED_AT].to_numpy("datetime64[us]")
    n = len(leads)
    k = np.arange(settings.max_snapshots)
    rows = np.repeat(np.arange(n), settings.max_snapshots)
    idx = np.tile(k, n)
    as_of = created[rows] + (idx * settings.every_days).astype("timedelta64[D]")
    horizon = np.timedelta64(settings.horizon_days, "D")
    end = np.datetime64(data_end.to_datetime64(), "us")
    conv = converted[rows]
    disq = disqualified[rows]
    # open at as_of: no conversion or disqualification strictly before it
    still_open = (np.isnat(conv) | (conv >= as_of)) & (np.isnat(disq) | (disq >= as_of))
    complete = as_of + horizon <= end
    keep = still_open & complete
    rows, idx, as_of, conv = rows[keep], idx[keep], as_of[keep], conv[keep]
    label = (~np.isnat(conv)) & (conv >= as_of) & (conv < as_of + horizon)
    out = leads.iloc[rows].reset_index(drop=True)
    out[AS_OF] = as_of
    out[SNAPSHOT_INDEX] = idx.astype(np.int16)
    out[LABEL] = label.astype(np.int8)
    return out


def assign_split(snapshots: pd.DataFrame, windows: SplitWindows) -> pd.Series:
    """``train`` / ``validation`` / ``test`` / ``gap`` (purged) for each snapshot."""
    t = snapshots[AS_OF]
    split = np.full(len(snapshots), "gap", dtype=object)
    split[(t < windows.train_end).to_numpy()] = "train"
    split[((t >= windows.validation_start) & (t < windows.validation_end)).to_numpy()] = (
        "validation"
    )
    split[((t >= windows.test_start) & (t <= windows.test_end)).to_numpy()] = "test"
    return pd.Series(split, index=snapshots.index, name=SPLIT)
