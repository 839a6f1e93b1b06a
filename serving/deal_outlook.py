"""The outlook of open deals from a request: per-record validation, then the close-time model.

Each deal is checked on its own against the ``deals`` contract (outcome fields are not
accepted), with its ``stage_history`` entries and recent ``activities`` against theirs;
their ``deal_id`` is the deal's. Invalid records come back as errors (index, id, field,
message) beside the results of the valid ones. Valid deals are scored by the close-time
model with the shared feature function, the lead context coming from the loaded history
when the service has one. Without a model, the historical win rate of the deal's stage
(from the loaded history) is the fallback, and each result says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd

from data_contracts import tables as T
from data_contracts.payloads import record_model, validate_records
from data_contracts.spec import TableSpec
from data_contracts.storage import frame_from_validated
from features.lead_features import AS_OF
from models.close_time import CloseTimeModel
from models.stage_weighted import stage_win_rates
from serving.lead_scoring import ScoredBatch, now_naive_utc
from serving.model_store import ServedModel
from serving.records import nested_rows, not_before, split_body

STAGES_FIELD: Final = "stage_history"
ACTIVITIES_FIELD: Final = "activities"
STAGE_INPUT = record_model(T.STAGE_HISTORY)
ACTIVITY_INPUT = record_model(T.ACTIVITIES)


def deal_spec(served: ServedModel[CloseTimeModel]) -> TableSpec:
    """The deals contract with the served model's custom fields."""
    custom = served.model.deal_custom if served.model is not None else []
    return T.DEALS.with_custom_fields(tuple(custom)) if custom else T.DEALS


def _split(
    deals: Sequence[Any], as_of: datetime, spec: TableSpec, *, lenient: bool
) -> tuple[
    list[tuple[int, dict[str, Any]]],
    list[dict[str, Any]],
    list[dict[str, Any]],
    list[dict[str, Any]],
]:
    """Valid ``(index, deal)`` pairs, their stage entries and activities, and the errors.
    ``lenient`` (no model serves) sets fields the contract does not know aside under
    ``_ignored_fields`` instead of rejecting them: they are a model's custom fields."""
    known = set(spec.column_names)
    split = [
        split_body(d, (STAGES_FIELD, ACTIVITIES_FIELD), known, lenient=lenient)
        if isinstance(d, Mapping)
        else (d, [])
        for d in deals
    ]
    valid, deal_errors = validate_records(record_model(spec), [b for b, _ in split], T.DEAL_ID)
    errors: list[dict[str, Any]] = [
        {"index": e.index, "id": e.record_id, "field": e.field, "message": e.message}
        for e in deal_errors
    ]
    out, stages, acts = [], [], []
    for index, deal in valid:
        data = deal.__dict__.copy()  # a flat record's fields: model_dump() without its cost
        parent = (T.DEAL_ID, data[T.DEAL_ID])
        s_ok, s_bad = nested_rows(deals[index], STAGES_FIELD, STAGE_INPUT, T.STAGE, parent)
        a_ok, a_bad = nested_rows(
            deals[index], ACTIVITIES_FIELD, ACTIVITY_INPUT, T.ACTIVITY_ID, parent
        )
        problems = s_bad + a_bad
        if data[T.CREATED_AT] > as_of:
            problems.append((T.CREATED_AT, f"is after the scoring time {as_of.isoformat()}"))
        problems += not_before(s_ok, STAGES_FIELD, T.ENTERED_AT, as_of)
        problems += not_before(a_ok, ACTIVITIES_FIELD, T.OCCURRED_AT, as_of)
        if problems:
            errors.extend(
                {"index": index, "id": data[T.DEAL_ID], "field": f, "message": m}
                for f, m in problems
            )
            continue
        if split[index][1]:
            data["_ignored_fields"] = split[index][1]
        out.append((index, data))
        stages.extend(s_ok)
        acts.extend(a_ok)
    errors.sort(key=lambda e: e["index"])
    return out, stages, acts, errors


def _json(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.datetime64 | pd.Timestamp):
        return None if pd.isna(value) else str(pd.Timestamp(value).date())
    return value


def deal_outlook(
    deals: Sequence[Any],
    served: ServedModel[CloseTimeModel],
    *,
    history: dict[str, pd.DataFrame] | None,
    as_of: datetime | None = None,
) -> ScoredBatch:
    """Outlook results for the valid deals (in request order) and errors for the others."""
    when = now_naive_utc(as_of)
    spec = deal_spec(served)
    valid, stages, acts, errors = _split(deals, when, spec, lenient=served.model is None)
    if not valid:
        return ScoredBatch([], errors)
    frame = frame_from_validated([d for _, d in valid], spec).assign(
        **{AS_OF: np.datetime64(pd.Timestamp(when).to_datetime64(), "us")}
    )
    stage_frame = frame_from_validated(stages, T.STAGE_HISTORY)
    results: list[dict[str, Any]] = []
    if served.model is not None:
        lead_custom = tuple(served.model.lead_custom)
        empty_leads = T.LEADS.with_custom_fields(lead_custom) if lead_custom else T.LEADS
        leads = history["leads"] if history is not None else frame_from_validated([], empty_leads)
        deal_acts = frame_from_validated(acts, T.ACTIVITIES)
        if history is not None:  # the leads' own touches (lead context), from the history
            lead_acts = history["activities"]
            deal_acts = pd.concat(
                [deal_acts, lead_acts[lead_acts[T.DEAL_ID].isna()]], ignore_index=True
            )
        tables = {"leads": leads, "stage_history": stage_frame, "activities": deal_acts}
        table, flags = served.model.outlook_table(frame, tables)
        for row, (index, deal) in enumerate(valid):
            rec = {k: _json(v) for k, v in table.iloc[row].items() if k != "flags"}
            results.append(
                {
                    "index": index,
                    "deal_id": deal[T.DEAL_ID],
                    **rec,
                    "flags": [f.model_dump() for f in flags[row]],
                    "scored_by": "model",
                    "fallback_reason": None,
                    "model_version": served.version,
                }
            )
        return ScoredBatch(results, errors)
    if history is None:
        why = (
            served.reason or "no close-time model"
        ) + "; and no history is loaded for stage rates"
        errors.extend(
            {"index": i, "id": d[T.DEAL_ID], "field": None, "message": why} for i, d in valid
        )
        return ScoredBatch([], sorted(errors, key=lambda e: e["index"]))
    rates = stage_win_rates(history["deals"], history["stage_history"], pd.Timestamp(when))
    current = (
        stage_frame.sort_values(T.ENTERED_AT).groupby(T.DEAL_ID)[T.STAGE].last().astype("str")
        if len(stage_frame)
        else pd.Series(dtype=object)
    )
    for index, deal in valid:
        stage = current.get(deal[T.DEAL_ID])
        results.append(
            {
                "index": index,
                "deal_id": deal[T.DEAL_ID],
                "current_stage": stage,
                "p_win": float(rates.of(np.array([stage], dtype=object))[0]),
                "scored_by": "stage_rates",
                "fallback_reason": served.reason,
                "model_version": None,
                **(
                    {"ignored_fields": deal["_ignored_fields"]} if "_ignored_fields" in deal else {}
                ),
            }
        )
    return ScoredBatch(results, errors)


__all__ = ["deal_outlook", "deal_spec"]
