"""Each deal's true law, from the generator's truth (generated data only).

``leadcast generate`` writes every deal's stage-transition rates (``truth/deals``). With a
deal's stage at some moment they give its exact chances from then on
(:func:`data_contracts.truth.deal_outcome_cdf`; the stages are a Markov chain, so nothing
else about the deal's past matters). The close-time model's oracle
(:func:`models.close_time_training.oracle_curves`) and the forecast's oracle
(:mod:`models.forecast_oracle`) both read them through :func:`true_laws`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from data_contracts import tables as T
from data_contracts.truth import DEAL_RATE_COLUMNS, deal_outcome_cdf
from data_contracts.vocabulary import OPEN_STAGES


@dataclass(frozen=True)
class TrueLaws:
    """Per queried row: the deal's true rates ``(n, 12)`` (NaN when the truth does not
    hold the deal), its open-stage index (−1 when the stage is not an open one) and
    whether both are known."""

    rates: npt.NDArray[np.float64]
    stage: npt.NDArray[np.int64]
    known: npt.NDArray[np.bool_]

    def won_within(self, days: float) -> npt.NDArray[np.float64]:
        """P(won within ``days`` of the moment the stages were taken); NaN where unknown."""
        out = np.full(len(self.stage), np.nan)
        if self.known.any():
            out[self.known] = deal_outcome_cdf(
                self.rates[self.known], self.stage[self.known], days
            )[0]
        return out


def true_laws(
    deal_ids: npt.ArrayLike, stages: npt.ArrayLike, truth_deals: pd.DataFrame
) -> TrueLaws:
    """The true laws of deals ``deal_ids`` in ``stages`` (stage names, one per row) from the
    truth's ``deals`` table; ids are matched as text."""
    by_id = truth_deals.set_index(truth_deals[T.DEAL_ID].astype("str"))[list(DEAL_RATE_COLUMNS)]
    rates = by_id.reindex(pd.Index(np.asarray(deal_ids, dtype=object).astype(str)))
    matrix = rates.to_numpy(np.float64)
    stage = pd.Index(OPEN_STAGES).get_indexer(
        pd.Series(np.asarray(stages, dtype=object)).astype(str)
    )
    known = (stage >= 0) & ~np.isnan(matrix).any(axis=1)
    return TrueLaws(matrix, stage.astype(np.int64), known)


__all__ = ["TrueLaws", "true_laws"]
