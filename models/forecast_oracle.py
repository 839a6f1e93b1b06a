"""The oracle forecast: what a forecaster that knew each open deal's true law would say.

Generated data only: ``leadcast generate`` writes each deal's true stage-transition rates
(``truth/deals``), and a deal's chance of being won inside a period, given its stage at the
period's start, follows from them exactly (:func:`data_contracts.truth.deal_outcome_cdf`;
the stages are a Markov chain, so nothing else about the deal's past matters). Given their
rates the deals move independently, so the open pipeline's bookings are a sum of
independent Bernoulli draws: no shared factor (ρ = 0) and no recalibration.

The oracle replaces only the open deals' chances. The deals already won are known to both,
and the deals not created yet come from the same new-deal law as the model's forecast: the
truth of a deal that does not exist yet is a lead's, not a deal's.

What it is for: the backtest scores it beside the model. Its CRPS is about the best any
forecast of the open pipeline can do with what is knowable at the period's start, so the
model's CRPS against it shows what is left to gain. Its interval coverage on one history
shows how far chance alone moves a coverage measured on a few dozen periods: the oracle is
calibrated by construction, up to the new deals' part.

Leakage: none for scoring — the truth is what the generator drew before the history
began; nothing about the period's outcomes enters.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from models.forecast import ForecastInputs
from models.true_laws import true_laws

_DAY = pd.Timedelta(days=1)


def oracle_chances(inputs: ForecastInputs, truth_deals: pd.DataFrame) -> np.ndarray:
    """Each open deal's true chance of being won between ``inputs.as_of`` and the period's
    end, from its rates in ``truth_deals`` and its stage at ``as_of``
    (:func:`models.true_laws.true_laws`); NaN for a deal the truth does not hold or whose
    stage is not an open one."""
    days = max((inputs.period.end - pd.Timestamp(inputs.as_of)) / _DAY, 0.0)
    return true_laws(inputs.open.deal_id, inputs.open.stage, truth_deals).won_within(days)


def oracle_inputs(inputs: ForecastInputs, truth_deals: pd.DataFrame) -> tuple[ForecastInputs, int]:
    """``inputs`` with the open deals' chances replaced by their true ones
    (:func:`oracle_chances`), and how many deals had none and kept ``inputs``' chance."""
    true_p = oracle_chances(inputs, truth_deals)
    missing = np.isnan(true_p)
    p = np.where(missing, inputs.open.p_won, np.clip(true_p, 0.0, 1.0))
    oracle = replace(
        inputs,
        open=replace(inputs.open, p_won=p),
        method="oracle",
        notes=[*inputs.notes, "open deals' chances from their true laws (generated data)"],
    )
    return oracle, int(missing.sum())


__all__ = ["oracle_chances", "oracle_inputs"]
