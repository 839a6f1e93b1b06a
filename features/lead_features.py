"""Point-in-time features of leads: one function for training snapshots and for serving.

``build_lead_features(snapshots, activities, owner_history)`` computes, for every row of
``snapshots`` (a lead's attributes plus the time ``as_of`` it is seen at), features that use
**only events stamped strictly before that row's ``as_of``**:

- static attributes, BANT answers and custom fields, as entered on the lead;
- engagement counts by activity type over the 7 / 30 / 90 days before ``as_of``;
- recency (days since the last and first touch), total touches, velocity (touch rate in
  the last 30 days against the 60 days before);
- days since the lead was created;
- the owner's point-in-time conversion record: leads of that owner whose 90-day window
  had closed before ``as_of``, and the share of them that converted (smoothed).

Training calls it with many snapshots per lead; serving calls it once per lead with
``as_of = now`` and an :class:`OwnerHistory` aggregated at training time. Outcome columns
(``converted_at``, ``disqualified_at``) of ``snapshots`` are never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from data_contracts import tables as T
from data_contracts.spec import Column, ColumnType
from features.encoding import FeatureEncoder

AS_OF: Final = "as_of"
HORIZON_DAYS: Final = 90
WINDOWS: Final[tuple[int, ...]] = (7, 30, 90)
#: Engagement types counted per window; ``close_date_changed`` is bookkeeping, not a touch.
ENGAGEMENT_TYPES: Final[tuple[str, ...]] = (
    "email_sent",
    "email_open",
    "email_click",
    "web_visit",
    "form_submit",
    "wechat_message",
    "call",
    "meeting",
    "demo",
    "quote_sent",
)
STATIC_CATEGORICAL: Final[tuple[str, ...]] = (
    "source",
    "industry",
    "region",
    "company_size",
    "seniority",
    "authority",
    "need",
    "timeline",
)
STATIC_NUMERIC: Final[tuple[str, ...]] = ("budget",)
#: Owner-record prior strength (pseudo-leads at the overall rate).
OWNER_PRIOR_WEIGHT: Final = 20.0
_DAY = np.timedelta64(1, "D")


def count_feature(activity_type: str, window: int) -> str:
    return f"n_{activity_type}_{window}d"


@dataclass(frozen=True)
class OwnerHistory:
    """Matured 90-day outcomes per owner: rows ``(owner_id, matured_at, n, k)``.

    ``n`` leads of ``owner_id`` whose 90-day window closed at ``matured_at``, ``k`` of which
    converted within it. Built per lead for training (:meth:`from_leads`) and aggregated
    per owner for serving (:meth:`aggregate`); both answer the same point-in-time query.
    """

    frame: pd.DataFrame

    @classmethod
    def from_leads(cls, leads: pd.DataFrame) -> OwnerHistory:
        """One row per lead: matured at ``created_at + 90 d``; converted iff ``converted_at``
        falls within those 90 days. Uses outcome columns, but only ever reveals them for
        windows that closed strictly before the query's ``as_of``."""
        created = leads[T.CREATED_AT].to_numpy("datetime64[us]")
        converted = leads[T.CONVERTED_AT].to_numpy("datetime64[us]")
        matured = created + np.timedelta64(HORIZON_DAYS, "D")
        k = (~np.isnat(converted)) & (converted < matured)
        frame = pd.DataFrame(
            {
                T.OWNER_ID: leads[T.OWNER_ID].to_numpy(dtype=object),
                "matured_at": matured,
                "n": np.ones(len(leads), dtype=np.int64),
                "k": k.astype(np.int64),
            }
        )
        return cls(frame)

    def aggregate(self, as_of: pd.Timestamp) -> OwnerHistory:
        """Collapse everything matured before ``as_of`` into one row per owner stamped at
        ``as_of`` (for serving at any time after it). Includes a ``None`` owner row for the
        overall prior."""
        mature = self.frame[self.frame["matured_at"] < as_of]
        per_owner = mature.groupby(T.OWNER_ID, dropna=True)[["n", "k"]].sum().reset_index()
        per_owner["matured_at"] = as_of
        overall = pd.DataFrame(
            {
                T.OWNER_ID: [None],
                "matured_at": [as_of],
                "n": [int(mature["n"].sum())],
                "k": [int(mature["k"].sum())],
            }
        )
        return OwnerHistory(pd.concat([per_owner, overall], ignore_index=True))

    def query(self, owner_ids: pd.Series, as_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each (owner, as_of): matured leads ``n`` and smoothed conversion rate, using
        only rows with ``matured_at < as_of``."""
        hist = self.frame
        owner_rows = hist[T.OWNER_ID].notna().to_numpy()
        times = hist["matured_at"].to_numpy("datetime64[us]").astype(np.int64)
        q_times = as_of.astype("datetime64[us]").astype(np.int64)
        # the overall prior: every row (owner or pooled) counts once
        all_order = np.argsort(times, kind="stable")
        all_t = times[all_order]
        all_n = np.concatenate([[0], np.cumsum(hist["n"].to_numpy()[all_order])])
        all_k = np.concatenate([[0], np.cumsum(hist["k"].to_numpy()[all_order])])
        # per owner: sort by (owner code, time) and search within each owner's segment
        codes, uniques = pd.factorize(hist.loc[owner_rows, T.OWNER_ID].astype("str"))
        o_t = times[owner_rows]
        order = np.lexsort((o_t, codes))
        o_codes, o_t = codes[order], o_t[order]
        o_n = np.concatenate([[0], np.cumsum(hist["n"].to_numpy()[owner_rows][order])])
        o_k = np.concatenate([[0], np.cumsum(hist["k"].to_numpy()[owner_rows][order])])
        q_codes = pd.Index(uniques).get_indexer(owner_ids.astype("str").where(owner_ids.notna()))
        # composite key: owner segments are contiguous and time-sorted within
        o_rank, q_rank, span = _time_ranks(o_t, q_times)
        keys = o_codes.astype(np.int64) * span + o_rank
        q_keys = np.where(q_codes >= 0, q_codes.astype(np.int64) * span + q_rank, 0)
        seg_start = np.searchsorted(keys, np.where(q_codes >= 0, q_codes * span, 0), "left")
        upto = np.searchsorted(keys, q_keys, "left")
        n = np.where(q_codes >= 0, o_n[upto] - o_n[seg_start], 0)
        k = np.where(q_codes >= 0, o_k[upto] - o_k[seg_start], 0)
        pos = np.searchsorted(all_t, q_times, "left")
        pooled_n, pooled_k = all_n[pos], all_k[pos]
        prior = np.where(pooled_n > 0, pooled_k / np.maximum(pooled_n, 1), np.nan)
        rate = (k + OWNER_PRIOR_WEIGHT * prior) / (n + OWNER_PRIOR_WEIGHT)
        return n.astype(np.float64), rate

    def to_dict(self) -> dict[str, Any]:
        f = self.frame
        return {
            "owner_id": [None if pd.isna(o) else str(o) for o in f[T.OWNER_ID]],
            "matured_at": [str(pd.Timestamp(t)) for t in f["matured_at"]],
            "n": [int(v) for v in f["n"]],
            "k": [int(v) for v in f["k"]],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OwnerHistory:
        return cls(
            pd.DataFrame(
                {
                    T.OWNER_ID: pd.Series(data["owner_id"], dtype=object),
                    "matured_at": pd.to_datetime(pd.Series(data["matured_at"])).astype(
                        "datetime64[us]"
                    ),
                    "n": np.asarray(data["n"], dtype=np.int64),
                    "k": np.asarray(data["k"], dtype=np.int64),
                }
            )
        )


def _time_ranks(times: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.int64]:
    """Dense ranks of both time arrays on one shared scale, and a span larger than any rank,
    so that ``entity_code * span + rank`` is a sortable key that cannot overflow int64."""
    scale = np.unique(np.concatenate([times, queries]))
    span = np.int64(len(scale) + 1)
    return (
        np.searchsorted(scale, times).astype(np.int64),
        np.searchsorted(scale, queries).astype(np.int64),
        span,
    )


def _engagement(
    lead_ids: pd.Series, as_of: np.ndarray, activities: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Windowed counts, recency and velocity per snapshot row, strictly before ``as_of``."""
    n_rows = len(lead_ids)
    acts = activities[activities[T.LEAD_ID].notna()]
    acts = acts[acts[T.ACTIVITY_TYPE].isin(ENGAGEMENT_TYPES)]
    codes, uniques = pd.factorize(acts[T.LEAD_ID].astype("str"))
    a_time = acts[T.OCCURRED_AT].to_numpy("datetime64[us]").astype(np.int64)
    a_type = pd.Index(ENGAGEMENT_TYPES).get_indexer(acts[T.ACTIVITY_TYPE].astype("str"))
    order = np.lexsort((a_time, codes))
    codes, a_time, a_type = codes[order].astype(np.int64), a_time[order], a_type[order]
    q_codes = pd.Index(uniques).get_indexer(lead_ids.astype("str")).astype(np.int64)
    q_time = as_of.astype(np.int64)
    # activities sorted by (lead, time): one composite key finds each row's slice before as_of
    a_rank, q_rank, span = _time_ranks(a_time, q_time)
    keys = codes * span + a_rank
    has = q_codes >= 0
    q_start = np.searchsorted(keys, q_codes * span, "left")
    q_end = np.searchsorted(keys, q_codes * span + q_rank, "left")
    lengths = np.where(has, q_end - q_start, 0)
    q_start = np.where(has, q_start, 0)
    total = int(lengths.sum())
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    row_idx = np.repeat(np.arange(n_rows), lengths)
    act_idx = np.repeat(q_start - offsets, lengths) + np.arange(total)
    age_days = (q_time[row_idx] - a_time[act_idx]) / 86_400e6
    types = a_type[act_idx]
    n_types = len(ENGAGEMENT_TYPES)
    out: dict[str, np.ndarray] = {}
    for window in WINDOWS:
        inside = age_days <= window
        counts = np.bincount(
            row_idx[inside] * n_types + types[inside], minlength=n_rows * n_types
        ).reshape(n_rows, n_types)
        for j, name in enumerate(ENGAGEMENT_TYPES):
            out[count_feature(name, window)] = counts[:, j].astype(np.float64)
        out[f"n_touches_{window}d"] = counts.sum(axis=1).astype(np.float64)
    out["n_touches_total"] = lengths.astype(np.float64)
    last = np.full(n_rows, np.nan)
    first = np.full(n_rows, np.nan)
    nonempty = lengths > 0
    end_idx = q_start[nonempty] + lengths[nonempty] - 1
    last[nonempty] = (q_time[nonempty] - a_time[end_idx]) / 86_400e6
    first[nonempty] = (q_time[nonempty] - a_time[q_start[nonempty]]) / 86_400e6
    out["days_since_last_touch"] = last
    out["days_since_first_touch"] = first
    prior_60 = out["n_touches_90d"] - out["n_touches_30d"]
    out["touch_velocity"] = (out["n_touches_30d"] / 30.0) - (prior_60 / 60.0)
    return out


def custom_feature_columns(custom: Sequence[Column]) -> tuple[list[str], list[str]]:
    """Split custom fields into (numeric, categorical) feature columns."""
    numeric = [c.name for c in custom if c.dtype in (ColumnType.INTEGER, ColumnType.FLOAT)]
    numeric += [c.name for c in custom if c.dtype is ColumnType.BOOLEAN]
    categorical = [c.name for c in custom if c.dtype is ColumnType.STRING]
    return numeric, categorical


def lead_feature_encoder(custom: Sequence[Column] = ()) -> FeatureEncoder:
    """An unfitted encoder listing every lead feature in model order."""
    c_num, c_cat = custom_feature_columns(custom)
    engagement = [count_feature(t, w) for w in WINDOWS for t in ENGAGEMENT_TYPES]
    engagement += [f"n_touches_{w}d" for w in WINDOWS]
    numeric = [
        *STATIC_NUMERIC,
        *c_num,
        "days_since_created",
        *engagement,
        "n_touches_total",
        "days_since_last_touch",
        "days_since_first_touch",
        "touch_velocity",
        "owner_matured_leads",
        "owner_conversion_rate",
    ]
    return FeatureEncoder(numeric=numeric, categorical=[*STATIC_CATEGORICAL, *c_cat])


def build_lead_features(
    snapshots: pd.DataFrame,
    activities: pd.DataFrame,
    owner_history: OwnerHistory,
    custom: Sequence[Column] = (),
) -> pd.DataFrame:
    """Features of each snapshot row, using only events strictly before its ``as_of``.

    Inputs: ``snapshots`` — lead contract columns plus ``as_of`` (datetime64); rows may
    repeat a lead at several times. ``activities`` — the activities contract table (rows
    without a ``lead_id`` are ignored). ``owner_history`` — see :class:`OwnerHistory`.
    ``custom`` — the lead custom-field columns to carry as features.
    Output: a frame aligned with ``snapshots`` (same index) holding the columns of
    :func:`lead_feature_encoder`; categoricals as strings, numerics as float64 (days).
    Never reads outcome columns; never mutates its inputs.
    """
    as_of = snapshots[AS_OF].to_numpy("datetime64[us]")
    if np.isnat(as_of).any():
        raise ValueError("every snapshot row needs an as_of time; found missing values")
    out: dict[str, Any] = {}
    for name in STATIC_CATEGORICAL:
        out[name] = snapshots[name].astype("str").where(snapshots[name].notna()).to_numpy(object)
    out["budget"] = snapshots["budget"].to_numpy(dtype=np.float64, na_value=np.nan)
    c_num, c_cat = custom_feature_columns(custom)
    for name in c_num:
        out[name] = pd.to_numeric(snapshots[name].astype("Float64")).to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    for name in c_cat:
        out[name] = snapshots[name].astype("str").where(snapshots[name].notna()).to_numpy(object)
    created = snapshots[T.CREATED_AT].to_numpy("datetime64[us]")
    out["days_since_created"] = (as_of - created) / _DAY
    out.update(_engagement(snapshots[T.LEAD_ID], as_of, activities))
    n, rate = owner_history.query(snapshots[T.OWNER_ID], as_of)
    out["owner_matured_leads"] = n
    out["owner_conversion_rate"] = rate
    names = lead_feature_encoder(custom).feature_names
    return pd.DataFrame({k: out[k] for k in names}, index=snapshots.index)
