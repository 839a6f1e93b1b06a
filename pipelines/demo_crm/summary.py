"""The few numbers that say what a generated CRM looks like."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data_contracts.tables import CONVERTED_AT, CREATED_AT, OUTCOME
from data_contracts.truth import P_CONVERT_90D
from pipelines.demo_crm.generator import GeneratedCRM

HORIZON = pd.Timedelta(days=90)


def summarize(crm: GeneratedCRM) -> dict[str, Any]:
    """Rows per table, 90-day lead conversion (observed and truth), deal outcomes.

    The 90-day conversion rate is over leads created at least 90 days before the snapshot
    (end of ``end_date``), the only ones whose label is known; ``win_rate`` is won / closed.
    """
    leads, deals = crm.tables["leads"], crm.tables["deals"]
    snapshot = pd.Timestamp(crm.config.end_date) + pd.Timedelta(days=1)
    old = (leads[CREATED_AT] <= snapshot - HORIZON).to_numpy()
    age = leads[CONVERTED_AT] - leads[CREATED_AT]
    label = ((age >= pd.Timedelta(0)) & (age <= HORIZON)).to_numpy(dtype=bool, na_value=False)
    outcome = deals[OUTCOME].value_counts()
    won, lost = int(outcome.get("won", 0)), int(outcome.get("lost", 0))
    injected = crm.truth["injected_invalid"]
    return {
        "rows": {name: len(frame) for name, frame in crm.tables.items()},
        "leads_with_known_90d_label": int(old.sum()),
        "conversion_90d": float(label[old].mean()) if old.any() else float("nan"),
        "conversion_90d_truth": float(np.mean(crm.truth["leads"][P_CONVERT_90D].to_numpy()[old]))
        if old.any()
        else float("nan"),
        "deals_won": won,
        "deals_lost": lost,
        "deals_open": int(outcome.get("open", 0)),
        "win_rate": won / (won + lost) if won + lost else float("nan"),
        "injected_invalid": {
            str(k): int(v) for k, v in injected["table"].value_counts().sort_index().items()
        },
    }
