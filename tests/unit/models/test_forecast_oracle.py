"""The oracle forecast: each open deal's true chance from its rates, known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from data_contracts.truth import DEAL_RATE_COLUMNS
from models.forecast import ClosedDeals, ForecastInputs, OpenDeals, Period
from models.forecast_oracle import oracle_chances, oracle_inputs

pytestmark = pytest.mark.unit

PERIOD = Period.from_days("2026-11-01", "2026-11-30")  # 30 days from its start
WON_RATE, LOST_RATE, ADVANCE = 0.03, 0.01, 0.05


def truth() -> pd.DataFrame:
    """D0: negotiation wins at WON_RATE and is lost at LOST_RATE, never regresses.
    D1: every stage advances at ADVANCE, nothing is lost or regresses (an Erlang time)."""
    d0 = {f"advance_{i}": 0.02 for i in range(4)} | {f"lose_{i}": 0.0 for i in range(4)}
    d0 |= {f"regress_{i}": 0.0 for i in range(4)} | {"advance_3": WON_RATE, "lose_3": LOST_RATE}
    d1 = {f"advance_{i}": ADVANCE for i in range(4)}
    d1 |= {f"lose_{i}": 0.0 for i in range(4)} | {f"regress_{i}": 0.0 for i in range(4)}
    frame = pd.DataFrame([d0, d1])[list(DEAL_RATE_COLUMNS)]
    return frame.assign(deal_id=["D0", "D1"])


def inputs(as_of: pd.Timestamp = PERIOD.start) -> ForecastInputs:
    ids = np.array(["D0", "D1", "D9", "D1"], dtype=object)  # D9: not in the truth
    stages = np.array(["negotiation", "qualification", "proposal", "won"], dtype=object)
    text = np.array(["x"] * 4, dtype=object)
    empty = np.array([], dtype=object)
    return ForecastInputs(
        period=PERIOD,
        as_of=as_of,
        closed=ClosedDeals(empty, np.array([], dtype=np.float64), empty, empty, empty),
        open=OpenDeals(
            deal_id=ids,
            amount=np.array([100.0, 200.0, 300.0, 400.0]),
            p_won=np.array([0.5, 0.4, 0.3, 0.2]),
            stage=stages,
            owner=text,
            product=text,
            flags=np.array([""] * 4, dtype=object),
        ),
        new=None,
        method="close_time_model",
    )


def test_true_chances_have_the_closed_forms() -> None:
    p = oracle_chances(inputs(), truth())
    total = WON_RATE + LOST_RATE
    assert p[0] == pytest.approx(WON_RATE / total * (1 - math.exp(-total * 30)), rel=1e-9)
    x = ADVANCE * 30  # four stages to pass: P(Erlang(4, ADVANCE) <= 30)
    erlang = 1 - sum(math.exp(-x) * x**k / math.factorial(k) for k in range(4))
    assert p[1] == pytest.approx(erlang, rel=1e-9)
    # a deal the truth does not hold, and a stage that is not an open one: unknown
    assert np.isnan(p[2]) and np.isnan(p[3])


def test_the_window_runs_from_as_of_to_the_periods_end() -> None:
    p = oracle_chances(inputs(as_of=PERIOD.start + pd.Timedelta(days=20)), truth())
    total = WON_RATE + LOST_RATE
    assert p[0] == pytest.approx(WON_RATE / total * (1 - math.exp(-total * 10)), rel=1e-9)


def test_oracle_inputs_replace_only_the_chances_the_truth_knows() -> None:
    original = inputs()
    oracle, missing = oracle_inputs(original, truth())
    true_p = oracle_chances(original, truth())
    assert missing == 2
    np.testing.assert_allclose(oracle.open.p_won[:2], true_p[:2])
    np.testing.assert_array_equal(oracle.open.p_won[2:], original.open.p_won[2:])
    np.testing.assert_array_equal(oracle.open.amount, original.open.amount)
    assert oracle.method == "oracle" and oracle.closed is original.closed
    assert oracle.new is original.new and oracle.period == original.period
