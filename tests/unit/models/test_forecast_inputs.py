"""The deals of a forecast at as_of: a close stamped exactly at as_of is closed, once; what a
period booked, split as the forecast splits it."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from data_contracts import tables as T
from models.forecast import Period
from models.forecast_inputs import (
    booked,
    booked_by_part,
    snapshot_pipeline,
    stage_weighted_inputs,
)
from models.stage_weighted import stage_win_rates
from pipelines.demo_crm import GeneratorConfig, generate


def test_a_deal_won_exactly_at_as_of_is_booked_not_open() -> None:
    tables = generate(GeneratorConfig(leads=1500, seed=4, end_date=date(2026, 10, 31))).tables
    deals = tables["deals"]
    won = deals[deals["outcome"].astype("str") == "won"].iloc[-1]
    as_of = pd.Timestamp(won["closed_at"])
    period = Period(as_of.normalize(), as_of.normalize() + pd.Timedelta(days=30))
    snap = snapshot_pipeline(tables, as_of, period)
    assert won["deal_id"] in set(snap.closed["deal_id"])
    assert won["deal_id"] not in set(snap.open["deal_id"])
    inputs = stage_weighted_inputs(snap, stage_win_rates(deals, tables["stage_history"], as_of))
    assert won["deal_id"] in set(inputs.closed.deal_id)
    # every deal won in the period is either already booked at as_of or still open then
    in_period = deals[
        (deals["outcome"].astype("str") == "won")
        & (deals["closed_at"] >= period.start)
        & (deals["closed_at"] < period.end)
    ]
    known = set(snap.closed["deal_id"]) | set(snap.open["deal_id"])
    created_before = in_period[in_period["created_at"] < as_of]
    assert set(created_before["deal_id"]) <= known
    assert booked(deals, period)[1] == len(in_period)
    parts = booked_by_part(deals, period, as_of)
    assert sum(parts.values()) == pytest.approx(booked(deals, period)[0])
    assert parts["closed"] >= won["amount"] > 0


def test_booked_by_part_splits_by_close_and_creation_time() -> None:
    period = Period(pd.Timestamp("2026-03-01"), pd.Timestamp("2026-04-01"))
    as_of = pd.Timestamp("2026-03-10")
    rows = [  # (id, created, closed, outcome, amount)
        ("CLOSED", "2026-02-01", "2026-03-05", "won", 1.0),
        ("AT_AS_OF", "2026-02-01", "2026-03-10", "won", 2.0),  # booked at as_of: closed
        ("OPEN", "2026-03-09", "2026-03-20", "won", 10.0),
        ("NEW", "2026-03-10", "2026-03-25", "won", 100.0),  # created at as_of: not open then
        ("LOST", "2026-02-01", "2026-03-20", "lost", 1000.0),
        ("LATER", "2026-02-01", "2026-04-01", "won", 10_000.0),  # won after the period
        ("STILL_OPEN", "2026-02-01", None, "open", 100_000.0),
    ]
    deals = pd.DataFrame(
        {
            T.DEAL_ID: [r[0] for r in rows],
            T.CREATED_AT: pd.to_datetime([r[1] for r in rows]).astype("datetime64[us]"),
            T.CLOSED_AT: pd.to_datetime([r[2] for r in rows]).astype("datetime64[us]"),
            T.OUTCOME: [r[3] for r in rows],
            T.AMOUNT: [r[4] for r in rows],
        }
    )
    assert booked_by_part(deals, period, as_of) == {"closed": 3.0, "open": 10.0, "new": 100.0}
    assert booked(deals, period) == (113.0, 4)
