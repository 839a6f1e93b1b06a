"""Deal snapshots: openness, follow-up with censoring, the split and the weekly rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_contracts import tables as T
from features.lead_features import AS_OF
from models.competing_risks import CENSORED, LOST, WON
from models.deal_snapshots import (
    EVENT,
    TIME,
    DealSnapshotSettings,
    deal_windows,
    follow_up,
    open_deal_snapshots,
    person_period,
    split_snapshots,
)

pytestmark = pytest.mark.unit


def deals_frame(rows: list[tuple[str, str, str | None, str]]) -> pd.DataFrame:
    """(deal_id, created_at, closed_at, outcome)."""
    return pd.DataFrame(
        {
            T.DEAL_ID: [r[0] for r in rows],
            T.CREATED_AT: pd.to_datetime([r[1] for r in rows]).astype("datetime64[us]"),
            T.CLOSED_AT: pd.to_datetime([r[2] for r in rows]).astype("datetime64[us]"),
            T.OUTCOME: [r[3] for r in rows],
        }
    )


def test_snapshots_only_while_the_deal_is_open() -> None:
    deals = deals_frame([("D1", "2026-01-01", "2026-01-20", "won")])
    settings = DealSnapshotSettings(every_days=7, max_snapshots=10)
    snaps = open_deal_snapshots(deals, settings, pd.Timestamp("2027-01-01"))
    # an hour after creation, then every 7 days while not yet closed
    assert snaps[AS_OF].dt.day.tolist() == [1, 8, 15]
    assert (snaps[AS_OF] < snaps[T.CLOSED_AT]).all()


def test_follow_up_censors_at_the_end_of_observation() -> None:
    deals = deals_frame(
        [
            ("W", "2026-01-01", "2026-01-11", "won"),
            ("L", "2026-01-01", "2026-01-08", "lost"),
            ("LATE", "2026-01-01", "2026-03-01", "won"),
            ("OPEN", "2026-01-01", None, "open"),
        ]
    )
    snaps = deals.assign(**{AS_OF: pd.Timestamp("2026-01-01").as_unit("us")})
    time, event = follow_up(snaps, pd.Timestamp("2026-02-01"))
    assert event.tolist() == [WON, LOST, CENSORED, CENSORED]
    np.testing.assert_allclose(time, [10.0, 7.0, 31.0, 31.0])


def test_split_follow_up_never_reaches_into_a_later_part() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, 1000, n), unit="D")
    duration = pd.to_timedelta(rng.exponential(60, n), unit="D")
    closed = created + duration
    end = pd.Timestamp("2026-10-01")
    still_open = closed >= end
    deals = pd.DataFrame(
        {
            T.DEAL_ID: [f"D{i}" for i in range(n)],
            T.CREATED_AT: created.astype("datetime64[us]"),
            T.CLOSED_AT: closed.where(~still_open).astype("datetime64[us]"),
            T.OUTCOME: np.where(still_open, "open", np.where(rng.random(n) < 0.4, "won", "lost")),
        }
    )
    settings = DealSnapshotSettings()
    windows = deal_windows(end, settings)
    parts = split_snapshots(deals, windows, settings)
    for name, part in parts.items():
        assert len(part) > 0
        stop = part[AS_OF] + pd.to_timedelta(part[TIME], unit="D")
        assert (stop <= windows.follow_up_end(name) + pd.Timedelta(seconds=1)).all(), name
    # validation and test rows have complete 90-day windows: none is censored within 90 days
    for name in ("validation", "test"):
        part = parts[name]
        assert not ((part[EVENT] == CENSORED) & (part[TIME] < 90)).any()
    # training sees deals still open at the validation start as censored, never as lost
    train = parts["train"]
    assert (train[EVENT] == CENSORED).any()
    assert train.loc[train[EVENT] == CENSORED, T.OUTCOME].isin(["open", "won", "lost"]).all()


def test_person_period_rows_labels_and_weights() -> None:
    time = np.array([10.0, 10.5, 400.0, 3.0])
    event = np.array([WON, CENSORED, LOST, LOST])
    pp = person_period(time, event, horizon_weeks=26)
    frame = pd.DataFrame(
        {"row": pp.snapshot_row, "week": pp.week, "label": pp.label, "w": pp.weight}
    )
    won = frame[frame.row == 0]
    assert won.week.tolist() == [0, 1] and won.label.tolist() == [0, WON]
    censored = frame[frame.row == 1]
    assert censored.label.tolist() == [0, 0]
    np.testing.assert_allclose(censored.w, [1.0, 3.5 / 7.0])
    long = frame[frame.row == 2]
    assert len(long) == 26 and (long.label == 0).all()  # closes after the horizon
    assert frame[frame.row == 3].label.tolist() == [LOST]


def test_naive_mode_counts_open_deals_as_lost() -> None:
    pp = person_period(np.array([10.5]), np.array([CENSORED]), 26, naive_open_as_lost=True)
    assert pp.label.tolist() == [0, LOST]
