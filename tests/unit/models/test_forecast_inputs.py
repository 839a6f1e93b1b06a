"""The deals of a forecast at as_of: a close stamped exactly at as_of is closed, once."""

from __future__ import annotations

from datetime import date

import pandas as pd

from models.forecast import Period
from models.forecast_inputs import booked, snapshot_pipeline, stage_weighted_inputs
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
