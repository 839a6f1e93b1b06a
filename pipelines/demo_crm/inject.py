"""Invalid-row injection: give the contracts something to catch.

For each table about ``share × rows`` rows (rounded half up) are corrupted, spread evenly
over that table's kinds. Each corrupted row breaks exactly one contract rule and no other
row's rules: key columns, ``leads.created_at`` and ``deals.created_at`` (which other rows'
rules read) are never changed and no duplicate keys are made. Every corrupted row is listed
with its position in the written file, its key as written, the column(s) and the rule code
(``data_contracts.truth.RULE_*``) it breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts import truth as T
from data_contracts.tables import (
    ACTIVITY_ID,
    ACTIVITY_TYPE,
    AMOUNT,
    CLOSED_AT,
    CONVERTED_AT,
    CREATED_AT,
    CURRENCY,
    DEAL_ID,
    DISQUALIFIED_AT,
    ENTERED_AT,
    LEAD_ID,
    NEW_EXPECTED_CLOSE_DATE,
    OUTCOME,
    STAGE,
)
from pipelines.demo_crm.frames import typed_frame

DAY = pd.Timedelta(days=1)
CLOSE_DATE_CHANGED = "close_date_changed"
#: values outside the vocabularies (a raw label, a range instead of a band code, …)
BAD_SOURCE = "fax"
BAD_COMPANY_SIZE = "50-200"
BAD_CURRENCY = "rmb"
BAD_ACTIVITY_TYPE = "fax_sent"
BAD_STAGE = "contract_signed"

Tables = dict[str, pd.DataFrame]
#: (tables, table frame being corrupted, row positions, rng) → None; mutates the frame
Corrupt = Callable[[Tables, pd.DataFrame, np.ndarray, np.random.Generator], None]
Eligible = Callable[[Tables, pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class InvalidKind:
    """One way to break one rule of one table."""

    table: str
    name: str
    column: str
    rule: str
    description: str
    eligible: Eligible
    corrupt: Corrupt


def _all(_: Tables, frame: pd.DataFrame) -> np.ndarray:
    return np.ones(len(frame), dtype=bool)


def _set(frame: pd.DataFrame, rows: np.ndarray, column: str, value: object) -> None:
    frame.iloc[rows, frame.columns.get_loc(column)] = value


def _unused_ids(tables: Tables, table: str, column: str, prefix: str, k: int) -> list[str]:
    """``k`` ids shaped like ``table``'s ids that name no row of it.

    The generator numbers ids 1…n, so numbers above n are free.
    """
    existing = tables[table][column]
    width = int(existing.str.len().max()) - len(prefix) if len(existing) else 6
    ids = [f"{prefix}{len(existing) + 1 + j:0{width}d}" for j in range(k)]
    if existing.isin(ids).any():
        raise AssertionError(f"injected ids collide with {table}.{column}: ids not numbered 1…n")
    return ids


def _negate(frame: pd.DataFrame, rows: np.ndarray, column: str, default: float) -> None:
    values = frame[column].to_numpy(dtype=float, na_value=np.nan)[rows]
    values = np.where(np.isnan(values) | (values <= 0), default, values)
    _set(frame, rows, column, -values)


def _lead_converted_before_created(
    _: Tables, frame: pd.DataFrame, rows: np.ndarray, rng: np.random.Generator
) -> None:
    created = frame[CREATED_AT].to_numpy()[rows]
    _set(frame, rows, CONVERTED_AT, created - DAY * rng.integers(1, 31, size=len(rows)))


def _no_lead_no_deal(
    _: Tables, frame: pd.DataFrame, rows: np.ndarray, rng: np.random.Generator
) -> None:
    _set(frame, rows, LEAD_ID, None)
    _set(frame, rows, DEAL_ID, None)


def _activity_date_dropped(
    _: Tables, frame: pd.DataFrame, rows: np.ndarray, rng: np.random.Generator
) -> None:
    _set(frame, rows, ACTIVITY_TYPE, CLOSE_DATE_CHANGED)
    _set(frame, rows, NEW_EXPECTED_CLOSE_DATE, pd.NaT)


def _stage_before_deal(
    tables: Tables, frame: pd.DataFrame, rows: np.ndarray, rng: np.random.Generator
) -> None:
    deals = tables["deals"]
    position = pd.Index(deals[DEAL_ID]).get_indexer(frame[DEAL_ID].iloc[rows])
    created = deals[CREATED_AT].to_numpy()[position]
    # distinct offsets keep (deal_id, stage, entered_at) unique even within one deal
    seconds = rng.choice(30 * 86_400, size=len(rows), replace=False)
    _set(frame, rows, ENTERED_AT, created - DAY - pd.to_timedelta(seconds, unit="s").to_numpy())


KINDS: tuple[InvalidKind, ...] = (
    InvalidKind(
        "leads", "unknown_source", "source", T.RULE_IN_SET,
        f"source {BAD_SOURCE!r} is not a source code",
        _all, lambda t, f, r, g: _set(f, r, "source", BAD_SOURCE),
    ),
    InvalidKind(
        "leads", "negative_budget", "budget", T.RULE_BETWEEN, "budget is negative",
        _all, lambda t, f, r, g: _negate(f, r, "budget", 50_000.0),
    ),
    InvalidKind(
        "leads", "converted_before_created", CONVERTED_AT, T.RULE_ORDER,
        "converted_at is before created_at",
        lambda t, f: f[DISQUALIFIED_AT].isna().to_numpy(), _lead_converted_before_created,
    ),
    InvalidKind(
        "leads", "unknown_company_size", "company_size", T.RULE_IN_SET,
        f"company_size {BAD_COMPANY_SIZE!r} is not a size band code",
        _all, lambda t, f, r, g: _set(f, r, "company_size", BAD_COMPANY_SIZE),
    ),
    InvalidKind(
        "deals", "negative_amount", AMOUNT, T.RULE_BETWEEN, "amount is negative",
        _all, lambda t, f, r, g: _negate(f, r, AMOUNT, 10_000.0),
    ),
    InvalidKind(
        "deals", "won_without_closed_at", CLOSED_AT, T.RULE_CONDITIONAL_NULL,
        "outcome is won but closed_at is empty",
        lambda t, f: (f[OUTCOME] == "won").to_numpy(dtype=bool, na_value=False),
        lambda t, f, r, g: _set(f, r, CLOSED_AT, pd.NaT),
    ),
    InvalidKind(
        "deals", "lowercase_currency", CURRENCY, T.RULE_REGEX,
        f"currency {BAD_CURRENCY!r} is not an upper-case ISO 4217 code",
        _all, lambda t, f, r, g: _set(f, r, CURRENCY, BAD_CURRENCY),
    ),
    InvalidKind(
        "deals", "unknown_lead", LEAD_ID, T.RULE_FOREIGN_KEY, "lead_id names no lead",
        _all, lambda t, f, r, g: _set(f, r, LEAD_ID, _unused_ids(t, "leads", LEAD_ID, "L", len(r))),
    ),
    InvalidKind(
        "activities", "unknown_activity_type", ACTIVITY_TYPE, T.RULE_IN_SET,
        f"activity_type {BAD_ACTIVITY_TYPE!r} is not an activity type code",
        lambda t, f: (f[ACTIVITY_TYPE] != CLOSE_DATE_CHANGED).to_numpy(dtype=bool),
        lambda t, f, r, g: _set(f, r, ACTIVITY_TYPE, BAD_ACTIVITY_TYPE),
    ),
    InvalidKind(
        "activities", "no_lead_no_deal", f"{LEAD_ID}|{DEAL_ID}", T.RULE_AT_LEAST_ONE_OF,
        "neither lead_id nor deal_id is set",
        _all, _no_lead_no_deal,
    ),
    InvalidKind(
        "activities", "close_date_change_without_date", NEW_EXPECTED_CLOSE_DATE,
        T.RULE_CONDITIONAL_NULL, "close_date_changed without new_expected_close_date",
        lambda t, f: f[DEAL_ID].notna().to_numpy(), _activity_date_dropped,
    ),
    InvalidKind(
        "activities", "unknown_deal", DEAL_ID, T.RULE_FOREIGN_KEY, "deal_id names no deal",
        lambda t, f: f[DEAL_ID].notna().to_numpy(),
        lambda t, f, r, g: _set(f, r, DEAL_ID, _unused_ids(t, "deals", DEAL_ID, "D", len(r))),
    ),
    InvalidKind(
        "stage_history", "unknown_stage", STAGE, T.RULE_IN_SET,
        f"stage {BAD_STAGE!r} is not a stage code",
        _all, lambda t, f, r, g: _set(f, r, STAGE, BAD_STAGE),
    ),
    InvalidKind(
        "stage_history", "entered_before_deal", ENTERED_AT, T.RULE_ORDER,
        "entered_at is before its deal's created_at",
        _all, _stage_before_deal,
    ),
    InvalidKind(
        "stage_history", "unknown_deal", DEAL_ID, T.RULE_FOREIGN_KEY, "deal_id names no deal",
        _all, lambda t, f, r, g: _set(f, r, DEAL_ID, _unused_ids(t, "deals", DEAL_ID, "D", len(r))),
    ),
)  # fmt: skip

KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "leads": (LEAD_ID,),
    "deals": (DEAL_ID,),
    "activities": (ACTIVITY_ID,),
    "stage_history": (DEAL_ID, STAGE, ENTERED_AT),
}


def row_keys(frame: pd.DataFrame, table: str, rows: np.ndarray) -> list[str]:
    """The key of each row as written: key columns joined by ``|``, times as ISO 8601."""
    parts = []
    for column in KEY_COLUMNS[table]:
        values = frame[column].iloc[rows]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            values = values.dt.strftime("%Y-%m-%dT%H:%M:%S")
        parts.append(values.astype("str").fillna("").tolist())
    return ["|".join(p) for p in zip(*parts, strict=True)]


def injected_count(share: float, n_rows: int) -> int:
    """How many rows of an ``n_rows`` table are corrupted: ``share × n_rows`` rounded half up."""
    return int(np.floor(share * n_rows + 0.5))


def _allocate(
    rng: np.random.Generator, kinds: list[InvalidKind], pools: list[np.ndarray], k: int
) -> list[np.ndarray]:
    """Split ``k`` rows evenly over ``kinds`` (a kind short of eligible rows passes its rest
    on), drawing distinct rows from each kind's pool."""
    wanted = np.full(len(kinds), k // len(kinds))
    wanted[rng.permutation(len(kinds))[: k % len(kinds)]] += 1
    taken = np.zeros(max((len(p) for p in pools), default=0), dtype=bool)
    chosen: list[list[int]] = [[] for _ in kinds]
    carry = 0
    for _ in range(2):  # a second pass places what a short pool could not take
        for i, pool in enumerate(pools):
            need = wanted[i] + carry
            wanted[i] = 0
            free = pool & ~taken
            n_free = int(free.sum())
            got = min(need, n_free)
            if got == 0:
                carry = need
                continue
            rows = rng.choice(np.flatnonzero(free), size=got, replace=False)
            taken[rows] = True
            chosen[i].extend(rows.tolist())
            carry = need - got
    if carry:
        raise ValueError(
            f"cannot corrupt {k} rows of table {kinds[0].table!r}: only {k - carry} are eligible;"
            " lower --invalid-share or generate more leads"
        )
    return [np.array(sorted(c), dtype=np.int64) for c in chosen]


def inject_invalid(
    rng: np.random.Generator, tables: Tables, share: float
) -> tuple[Tables, pd.DataFrame]:
    """Corrupt ``share`` of each table's rows; returns new tables and the injection record.

    The input frames are not modified. The record has the ``truth.INJECTED_INVALID``
    columns, sorted by table (contract order) and row.
    """
    records: dict[str, list[object]] = {c: [] for c in T.INJECTED_INVALID.column_names}
    out = dict(tables)
    if share > 0:
        for table in tables:
            kinds = [k for k in KINDS if k.table == table]
            frame = tables[table].copy()
            pools = [kind.eligible(tables, frame) for kind in kinds]
            picks = _allocate(rng, kinds, pools, injected_count(share, len(frame)))
            for kind, rows in zip(kinds, picks, strict=True):
                if len(rows):
                    kind.corrupt(tables, frame, rows, rng)
            for kind, rows in zip(kinds, picks, strict=True):
                keys = row_keys(frame, table, rows)
                for row, key in zip(rows.tolist(), keys, strict=True):
                    records[T.INJ_TABLE].append(table)
                    records[T.INJ_ROW].append(row)
                    records[T.INJ_KEY].append(key)
                    records[T.INJ_COLUMN].append(kind.column)
                    records[T.INJ_RULE].append(kind.rule)
                    records[T.INJ_DESCRIPTION].append(kind.description)
            out[table] = frame
    record = typed_frame(
        T.INJECTED_INVALID,
        {c: np.array(v, dtype=np.int64 if c == T.INJ_ROW else object) for c, v in records.items()},
    )
    table_rank = record[T.INJ_TABLE].map({t: i for i, t in enumerate(tables)})
    order = np.lexsort((record[T.INJ_ROW].to_numpy(), table_rank.to_numpy()))
    return out, record.iloc[order].reset_index(drop=True)
