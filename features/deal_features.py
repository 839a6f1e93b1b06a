"""Point-in-time features of deals: one function for training snapshots and for serving.

``build_deal_features(snapshots, stage_history, activities, owner_deals)`` computes, for
every row of ``snapshots`` (a deal's contract columns plus the time ``as_of`` it is seen
at), features that use **only events stamped strictly before that row's ``as_of``**:

- stage: the current stage (last ``stage_history`` entry), days in it, "reached at least
  this stage" flags (Odoo's encoding), the number of stage regressions, the deal's age;
- the deal's own fields: amount, ``log1p(amount)``, product and custom deal fields;
- the owner's point-in-time record over deals closed before ``as_of`` (see
  :class:`OwnerDealHistory`): closed deals, smoothed win rate, mean won-cycle length;
- touches on the deal (activities carrying its ``deal_id``) over 7 / 30 / 90 days, in
  total, and days since the last one;
- the rep's expected close date as known at ``as_of`` (the first entered date, replaced
  by each ``close_date_changed`` activity): days until it, slips and days slipped.

The lead's attributes at deal creation are deliberately not computed here: a later step
joins lead features (``features.lead_features``) on ``lead_id`` at the deal's creation.

Outcome columns (``closed_at``, ``outcome``, ``lost_reason``) of ``snapshots`` are never
read. Snapshots taken after a deal closed will see its terminal ``won``/``lost`` stage
entry as the current stage; training snapshots must therefore be drawn while the deal is
open, which is the snapshot generator's job, not this module's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from data_contracts import tables as T
from data_contracts.spec import Column
from data_contracts.vocabulary import OPEN_STAGES
from features.encoding import FeatureEncoder
from features.lead_features import (
    AS_OF,
    ENGAGEMENT_TYPES,
    OWNER_PRIOR_WEIGHT,
    WINDOWS,
    OwnerHistory,
    _time_ranks,
    build_lead_features,
    count_feature,
    custom_feature_columns,
)

#: Stages whose "reached at least this stage" flag is a feature (qualification is implied).
REACHED_STAGES: Final[tuple[str, ...]] = ("needs_analysis", "proposal", "negotiation")
CLOSE_DATE_CHANGED: Final = "close_date_changed"
WON: Final = "won"
LOST: Final = "lost"
STATIC_CATEGORICAL: Final[tuple[str, ...]] = (T.PRODUCT,)
_DAY_US: Final = 86_400e6
_DAY = np.timedelta64(1, "D")


def reached_feature(stage: str) -> str:
    return f"reached_{stage}"


@dataclass(frozen=True)
class OwnerDealHistory:
    """Closed deals per owner: rows ``(owner_id, closed_at, n, k, won_cycle_days)``.

    ``n`` deals of ``owner_id`` closed at ``closed_at``, ``k`` of them won, whose
    created→closed cycles sum to ``won_cycle_days`` (days, won deals only). Built per deal
    for training (:meth:`from_deals`) and aggregated per owner for serving
    (:meth:`aggregate`); both answer the same point-in-time query (:meth:`query`).
    """

    frame: pd.DataFrame

    @classmethod
    def from_deals(cls, deals: pd.DataFrame) -> OwnerDealHistory:
        """One row per closed deal (``closed_at`` set, outcome won or lost) of the deals
        contract table. Reads outcome columns, but :meth:`query` only ever reveals deals
        closed strictly before the query's ``as_of``."""
        closed = deals[deals[T.CLOSED_AT].notna() & deals[T.OUTCOME].isin((WON, LOST))]
        created = closed[T.CREATED_AT].to_numpy("datetime64[us]")
        closed_at = closed[T.CLOSED_AT].to_numpy("datetime64[us]")
        won = (closed[T.OUTCOME] == WON).to_numpy(dtype=bool)
        cycle = (closed_at - created) / _DAY
        frame = pd.DataFrame(
            {
                T.OWNER_ID: closed[T.OWNER_ID].to_numpy(dtype=object),
                T.CLOSED_AT: closed_at,
                "n": np.ones(len(closed), dtype=np.int64),
                "k": won.astype(np.int64),
                "won_cycle_days": np.where(won, cycle, 0.0),
            }
        )
        return cls(frame)

    def aggregate(self, as_of: pd.Timestamp) -> OwnerDealHistory:
        """Collapse every deal closed strictly before ``as_of`` into one row per owner
        (deals without an owner kept as one ``None`` row, which feeds only the pooled
        prior), stamped at the last microsecond before ``as_of``: for serving at ``as_of``
        itself (the end of the history) or any time after it."""
        closed = self.frame[self.frame[T.CLOSED_AT] < as_of]
        per_owner = (
            closed.groupby(T.OWNER_ID, dropna=False)[["n", "k", "won_cycle_days"]]
            .sum()
            .reset_index()
        )
        per_owner[T.OWNER_ID] = (
            per_owner[T.OWNER_ID].astype(object).where(per_owner[T.OWNER_ID].notna(), None)
        )
        per_owner[T.CLOSED_AT] = pd.Timestamp(as_of).as_unit("us") - pd.Timedelta(1, "us")
        return OwnerDealHistory(per_owner[[T.OWNER_ID, T.CLOSED_AT, "n", "k", "won_cycle_days"]])

    def query(
        self, owner_ids: pd.Series, as_of: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each (owner, as_of), using only deals with ``closed_at < as_of``: closed
        deals ``n``; win rate smoothed toward the pooled rate of all owners with
        :data:`OWNER_PRIOR_WEIGHT` pseudo-deals (NaN before any deal closed); mean
        created→closed days of the owner's won deals (NaN without one)."""
        hist = self.frame
        times = hist[T.CLOSED_AT].to_numpy("datetime64[us]").astype(np.int64)
        q_times = as_of.astype("datetime64[us]").astype(np.int64)
        sums = np.column_stack(
            [
                hist["n"].to_numpy(dtype=np.float64),
                hist["k"].to_numpy(dtype=np.float64),
                hist["won_cycle_days"].to_numpy(dtype=np.float64),
            ]
        )
        # pooled prior: every row counts once (owners and the unowned)
        all_order = np.argsort(times, kind="stable")
        pooled_cum = _prefix(sums[all_order])
        pooled = pooled_cum[np.searchsorted(times[all_order], q_times, "left")]
        # per owner: sort by (owner code, time) and search within each owner's segment
        owners = hist[T.OWNER_ID]
        codes, uniques = pd.factorize(owners.astype("str").where(owners.notna()))
        q_codes = pd.Index(uniques).get_indexer(owner_ids.astype("str").where(owner_ids.notna()))
        order = np.lexsort((times, codes))
        o_codes = codes[order].astype(np.int64)
        cum = _prefix(sums[order])
        start, (end,) = _segments(o_codes, times[order], q_codes.astype(np.int64), [q_times])
        owned = q_codes >= 0
        mine = np.where(owned[:, None], cum[end] - cum[start], 0.0)
        n, k, cycle_sum = mine[:, 0], mine[:, 1], mine[:, 2]
        prior = np.where(pooled[:, 0] > 0, pooled[:, 1] / np.maximum(pooled[:, 0], 1), np.nan)
        rate = (k + OWNER_PRIOR_WEIGHT * prior) / (n + OWNER_PRIOR_WEIGHT)
        cycle = np.where(k > 0, cycle_sum / np.maximum(k, 1), np.nan)
        return n, rate, cycle

    def to_dict(self) -> dict[str, Any]:
        f = self.frame
        return {
            "owner_id": [None if pd.isna(o) else str(o) for o in f[T.OWNER_ID]],
            "closed_at": [str(pd.Timestamp(t)) for t in f[T.CLOSED_AT]],
            "n": [int(v) for v in f["n"]],
            "k": [int(v) for v in f["k"]],
            "won_cycle_days": [float(v) for v in f["won_cycle_days"]],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OwnerDealHistory:
        return cls(
            pd.DataFrame(
                {
                    T.OWNER_ID: pd.Series(data["owner_id"], dtype=object),
                    T.CLOSED_AT: pd.to_datetime(pd.Series(data["closed_at"], dtype=object)).astype(
                        "datetime64[us]"
                    ),
                    "n": np.asarray(data["n"], dtype=np.int64),
                    "k": np.asarray(data["k"], dtype=np.int64),
                    "won_cycle_days": np.asarray(data["won_cycle_days"], dtype=np.float64),
                }
            )
        )


def _prefix(values: np.ndarray) -> np.ndarray:
    """Cumulative sums along axis 0 with a leading zero: ``cum[j] - cum[i]`` sums ``i..j-1``."""
    zero = np.zeros((1, *values.shape[1:]), dtype=np.float64)
    return np.concatenate([zero, np.cumsum(values, axis=0, dtype=np.float64)])


def _take(values: np.ndarray, idx: np.ndarray, has: np.ndarray, fill: float) -> np.ndarray:
    """``values[idx]`` where ``has``, else ``fill`` (safe when ``values`` is empty)."""
    if len(values) == 0:
        return np.full(len(idx), fill, dtype=np.float64)
    return np.where(has, values[np.where(has, idx, 0)], fill)


def _segments(
    e_codes: np.ndarray, e_times: np.ndarray, q_codes: np.ndarray, q_times: list[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Events sorted by (entity code, time): for each query, the start of its entity's
    segment, and for each array in ``q_times`` the end (exclusive) of the events stamped
    strictly before that time. Queries with code ``-1`` get empty slices."""
    e_rank, q_rank, span = _time_ranks(e_times, np.concatenate(q_times))
    keys = e_codes * span + e_rank
    known = q_codes >= 0
    base = np.where(known, q_codes * span, 0)
    start = np.searchsorted(keys, base, "left")
    ends = []
    for j in range(len(q_times)):
        rank = q_rank[j * len(q_codes) : (j + 1) * len(q_codes)]
        ends.append(np.where(known, np.searchsorted(keys, base + rank, "left"), start))
    return start, ends


def _sorted_events(
    deal_ids: pd.Series, times: pd.Series, uniques: pd.Index
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events of the snapshot deals: (positions into the source rows, deal codes, times µs),
    sorted by (deal code, time); events of other deals are dropped."""
    codes = uniques.get_indexer(deal_ids.astype("str").where(deal_ids.notna()))
    t = times.to_numpy("datetime64[us]").astype(np.int64)
    keep = np.flatnonzero(codes >= 0)
    order = keep[np.lexsort((t[keep], codes[keep]))]
    return order, codes[order].astype(np.int64), t[order]


def _stage_features(
    q_codes: np.ndarray, as_of: np.ndarray, stage_history: pd.DataFrame, uniques: pd.Index
) -> dict[str, np.ndarray]:
    """Current stage, days in it, reached-stage flags and regressions before ``as_of``."""
    n_rows = len(q_codes)
    order, codes, times = _sorted_events(
        stage_history[T.DEAL_ID], stage_history[T.ENTERED_AT], uniques
    )
    stages = stage_history[T.STAGE].astype("str").to_numpy(object)[order]
    rank = pd.Index(OPEN_STAGES).get_indexer(stages).astype(np.int64)  # -1: won / lost
    # running max rank per deal: segments are contiguous, so offsetting each deal's ranks
    # above every earlier deal's lets one global maximum.accumulate stay within the deal
    width = np.int64(len(OPEN_STAGES) + 1)
    best = np.maximum.accumulate(codes * width + rank) - codes * width
    # a regression is an open-stage entry below the deal's previous open-stage entry;
    # won / lost entries are skipped, so reopening a lost deal compares with before it
    is_open = np.flatnonzero(rank >= 0)
    o_rank, o_code = rank[is_open], codes[is_open]
    drop = np.zeros(len(is_open), dtype=bool)
    drop[1:] = (o_code[1:] == o_code[:-1]) & (o_rank[1:] < o_rank[:-1])
    regress = np.zeros(len(rank), dtype=np.float64)
    regress[is_open] = drop
    cum_regress = _prefix(regress)
    q_time = as_of.astype(np.int64)
    start, (end,) = _segments(codes, times, q_codes, [q_time])
    has = end > start
    current = np.full(n_rows, None, dtype=object)
    current[has] = stages[end[has] - 1]
    out: dict[str, np.ndarray] = {
        "current_stage": current,
        "days_in_stage": (q_time - _take(times, end - 1, has, np.nan)) / _DAY_US,
    }
    reached = _take(best, end - 1, has, -1)
    for name in REACHED_STAGES:
        out[reached_feature(name)] = (reached >= OPEN_STAGES.index(name)).astype(np.float64)
    out["n_stage_regressions"] = cum_regress[end] - cum_regress[start]
    out["n_stage_entries"] = (end - start).astype(np.float64)
    return out


def _touch_features(
    q_codes: np.ndarray,
    as_of: np.ndarray,
    activities: pd.DataFrame,
    uniques: pd.Index,
    days_in_stage: np.ndarray,
) -> dict[str, np.ndarray]:
    """Touches on the deal (engagement activities, not bookkeeping) before ``as_of``: per
    window, in total, since the current stage was entered, and the recency of the last."""
    acts = activities[activities[T.ACTIVITY_TYPE].isin(ENGAGEMENT_TYPES)]
    _, codes, times = _sorted_events(acts[T.DEAL_ID], acts[T.OCCURRED_AT], uniques)
    q_time = as_of.astype(np.int64)
    # a touch is inside a w-day window when it is at most w days old, as for leads
    starts = [q_time - np.int64(w * _DAY_US) for w in WINDOWS]
    in_stage = np.nan_to_num(days_in_stage, nan=0.0)
    stage_start = q_time - np.round(in_stage * _DAY_US).astype(np.int64)
    start, (end, stage_from, *window_starts) = _segments(
        codes, times, q_codes, [q_time, stage_start, *starts]
    )
    out: dict[str, np.ndarray] = {}
    out["n_deal_touches_in_stage"] = (end - np.maximum(stage_from, start)).astype(np.float64)
    out["deal_touch_rate_in_stage"] = out["n_deal_touches_in_stage"] / np.maximum(in_stage, 3.0)
    for w, w_start in zip(WINDOWS, window_starts, strict=True):
        out[f"n_deal_touches_{w}d"] = (end - np.maximum(w_start, start)).astype(np.float64)
    out["n_deal_touches_total"] = (end - start).astype(np.float64)
    has = end > start
    out["days_since_last_deal_touch"] = (q_time - _take(times, end - 1, has, np.nan)) / _DAY_US
    return out


def _close_date_features(
    q_codes: np.ndarray,
    as_of: np.ndarray,
    first_entered: np.ndarray,
    activities: pd.DataFrame,
    uniques: pd.Index,
) -> dict[str, np.ndarray]:
    """The expected close date known at ``as_of`` and how often / far it slipped before.

    ``first_entered`` is each snapshot row's own ``expected_close_date`` (datetime64[us]).
    A slip is a change that moves the date later than the one it replaces; the first
    change is compared with the date the deal was created with (no slip when that is
    missing). Dates are whole days; ``days_to_expected_close`` counts from ``as_of``'s date.
    """
    changes = activities[
        (activities[T.ACTIVITY_TYPE] == CLOSE_DATE_CHANGED)
        & activities[T.NEW_EXPECTED_CLOSE_DATE].notna()
    ]
    order, codes, times = _sorted_events(changes[T.DEAL_ID], changes[T.OCCURRED_AT], uniques)
    new_day = _days(changes[T.NEW_EXPECTED_CLOSE_DATE].to_numpy("datetime64[us]")[order])
    # each deal's first-entered date, from its first snapshot row
    first_row = pd.Series(np.arange(len(q_codes))).groupby(q_codes).first()
    initial = np.full(len(uniques), np.nan)
    known = first_row.index.to_numpy() >= 0
    initial[first_row.index.to_numpy()[known]] = _days(first_entered)[first_row.to_numpy()[known]]
    prev = np.empty(len(new_day))
    if len(new_day):
        prev[0] = initial[codes[0]]
        same = codes[1:] == codes[:-1]
        prev[1:] = np.where(same, new_day[:-1], initial[codes[1:]])
    moved = new_day - prev
    slipped = np.nan_to_num(moved, nan=0.0) > 0
    cum = _prefix(np.column_stack([slipped.astype(np.float64), np.where(slipped, moved, 0.0)]))
    q_time = as_of.astype(np.int64)
    start, (end,) = _segments(codes, times, q_codes, [q_time])
    has = end > start
    expected = np.where(has, _take(new_day, end - 1, has, np.nan), _days(first_entered))
    days_to = expected - np.floor(_days(as_of))
    return {
        "days_to_expected_close": days_to,
        "n_close_date_slips": cum[end, 0] - cum[start, 0],
        "days_slipped_total": cum[end, 1] - cum[start, 1],
        "expected_close_passed": np.where(np.isnan(days_to), np.nan, (days_to < 0) * 1.0),
    }


def _text(values: pd.Series) -> np.ndarray:
    """Strings as an object array, missing values as ``None``."""
    text = values.astype("str").to_numpy(object)
    text[values.isna().to_numpy(dtype=bool)] = None
    return text


def _days(values: np.ndarray) -> np.ndarray:
    """datetime64 → float days since the epoch, NaT → NaN."""
    v = values.astype("datetime64[us]")
    return np.where(np.isnat(v), np.nan, v.astype(np.int64) / _DAY_US)


def deal_feature_encoder(custom: Sequence[Column] = ()) -> FeatureEncoder:
    """An unfitted encoder listing every deal feature in model order."""
    c_num, c_cat = custom_feature_columns(custom)
    numeric = [
        T.AMOUNT,
        "log_amount",
        *c_num,
        "deal_age_days",
        "days_in_stage",
        *[reached_feature(s) for s in REACHED_STAGES],
        "n_stage_regressions",
        "n_stage_entries",
        "mean_days_per_past_stage",
        *[f"n_deal_touches_{w}d" for w in WINDOWS],
        "n_deal_touches_total",
        "deal_touch_rate",
        "n_deal_touches_in_stage",
        "deal_touch_rate_in_stage",
        "days_since_last_deal_touch",
        "days_to_expected_close",
        "planned_cycle_days",
        "n_close_date_slips",
        "days_slipped_total",
        "expected_close_passed",
        "owner_closed_deals",
        "owner_win_rate",
        "owner_won_cycle_days",
    ]
    return FeatureEncoder(
        numeric=numeric, categorical=["current_stage", *STATIC_CATEGORICAL, *c_cat]
    )


def build_deal_features(
    snapshots: pd.DataFrame,
    stage_history: pd.DataFrame,
    activities: pd.DataFrame,
    owner_deals: OwnerDealHistory,
    custom: Sequence[Column] = (),
) -> pd.DataFrame:
    """Features of each snapshot row, using only events strictly before its ``as_of``.

    Inputs: ``snapshots`` — deal contract columns plus ``as_of`` (datetime64); rows may
    repeat a deal at several times; ``expected_close_date`` must be the date first entered
    (the contract's point-in-time design). ``stage_history`` and ``activities`` — the
    contract tables (activities without a ``deal_id`` are ignored). ``owner_deals`` — see
    :class:`OwnerDealHistory` (built from all deals for training, aggregated for serving).
    ``custom`` — the deal custom-field columns to carry as features.

    Output: a frame aligned with ``snapshots`` (same index) holding the columns of
    :func:`deal_feature_encoder`; categoricals as strings (None when missing), numerics as
    float64. Units: durations in days, amount in the dataset currency, flags as 0.0 / 1.0.
    Entries stamped exactly at ``as_of`` are ignored. Never reads the outcome columns of
    ``snapshots``; never mutates its inputs. Lead attributes are joined by a later step.
    """
    as_of = snapshots[AS_OF].to_numpy("datetime64[us]")
    if np.isnat(as_of).any():
        rows = snapshots.index[np.isnat(as_of)][:5].tolist()
        raise ValueError(f"every snapshot row needs an as_of time; missing at index {rows}")
    deal_ids = snapshots[T.DEAL_ID]
    q_codes, uniques = pd.factorize(deal_ids.astype("str").where(deal_ids.notna()))
    q_codes = q_codes.astype(np.int64)
    index = pd.Index(uniques)
    out: dict[str, Any] = {}
    amount = snapshots[T.AMOUNT].to_numpy(dtype=np.float64, na_value=np.nan)
    out[T.AMOUNT] = amount
    out["log_amount"] = np.log1p(np.maximum(amount, 0.0))
    c_num, c_cat = custom_feature_columns(custom)
    for name in c_num:
        out[name] = pd.to_numeric(snapshots[name].astype("Float64")).to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    for name in [*STATIC_CATEGORICAL, *c_cat]:
        out[name] = _text(snapshots[name])
    created = snapshots[T.CREATED_AT].to_numpy("datetime64[us]")
    out["deal_age_days"] = (as_of - created) / _DAY
    out.update(_stage_features(q_codes, as_of, stage_history, index))
    out.update(_touch_features(q_codes, as_of, activities, index, out["days_in_stage"]))
    # pace through the earlier stages: a deal that moved fast so far tends to keep moving
    past = out["n_stage_entries"] - 1
    out["mean_days_per_past_stage"] = np.where(
        past > 0, (out["deal_age_days"] - out["days_in_stage"]) / np.maximum(past, 1), np.nan
    )
    first_entered = snapshots[T.EXPECTED_CLOSE_DATE].to_numpy("datetime64[us]")
    out.update(_close_date_features(q_codes, as_of, first_entered, activities, index))
    # the rep's plan at creation (how long the deal should take) and the pace of work on it
    out["planned_cycle_days"] = _days(first_entered) - _days(created)
    out["deal_touch_rate"] = out["n_deal_touches_total"] / np.maximum(out["deal_age_days"], 7.0)
    n, rate, cycle = owner_deals.query(snapshots[T.OWNER_ID], as_of)
    out["owner_closed_deals"] = n
    out["owner_win_rate"] = rate
    out["owner_won_cycle_days"] = cycle
    encoder = deal_feature_encoder(custom)
    # object dtype kept explicitly: pandas >= 3 would otherwise infer its ``str`` dtype
    columns = {
        k: pd.Series(out[k], index=snapshots.index, dtype=np.float64) for k in encoder.numeric
    }
    columns |= {
        k: pd.Series(out[k], index=snapshots.index, dtype=object) for k in encoder.categorical
    }
    return pd.DataFrame(columns, index=snapshots.index)


# -- the lead behind the deal, as it was when the deal was created ----------------------------

#: Lead attributes carried onto its deals (static contract columns of the lead).
LEAD_CATEGORICAL: Final[tuple[str, ...]] = (
    "source",
    "industry",
    "region",
    "company_size",
    "seniority",
    "authority",
    "need",
    "timeline",
)
LEAD_NUMERIC: Final[tuple[str, ...]] = ("budget",)
LEAD_CUSTOM_PREFIX: Final = "lead_"
#: The lead's engagement before the deal was created (lead features at the deal's creation).
LEAD_ENGAGEMENT: Final[tuple[str, ...]] = (
    *(count_feature(t, 90) for t in ENGAGEMENT_TYPES),
    "n_touches_total",
    "touch_velocity",
    "days_since_first_touch",
    "days_since_last_touch",
)


def lead_custom_feature(name: str) -> str:
    """Lead custom fields are prefixed so that they can never clash with deal columns."""
    return f"{LEAD_CUSTOM_PREFIX}{name}"


def close_time_feature_encoder(
    deal_custom: Sequence[Column] = (), lead_custom: Sequence[Column] = ()
) -> FeatureEncoder:
    """Deal features (:func:`deal_feature_encoder`) plus the lead context of
    :func:`lead_context_features`, in model order."""
    deal = deal_feature_encoder(deal_custom)
    l_num, l_cat = custom_feature_columns(lead_custom)
    return FeatureEncoder(
        numeric=[
            *deal.numeric,
            *LEAD_NUMERIC,
            *[lead_custom_feature(c) for c in l_num],
            "lead_bant_points",
            "lead_age_at_deal_days",
            *[lead_custom_feature(c) for c in LEAD_ENGAGEMENT],
        ],
        categorical=[
            *deal.categorical,
            *LEAD_CATEGORICAL,
            *[lead_custom_feature(c) for c in l_cat],
        ],
    )


def lead_context_features(
    snapshots: pd.DataFrame,
    leads: pd.DataFrame,
    activities: pd.DataFrame,
    lead_custom: Sequence[Column] = (),
) -> pd.DataFrame:
    """The lead behind each snapshot's deal: its static attributes (source, industry, BANT
    answers, lead custom fields), its BANT rule points, its age when the deal was created
    and its engagement until then (``build_lead_features`` at the deal's creation, from
    ``activities``). All of these are fixed when the deal is created, so they are
    point-in-time for any snapshot of the deal; the lead's outcome columns are never read.
    Deals whose lead is unknown get missing values. Output aligned with ``snapshots``."""
    from models.bant import total_points  # models import features; import late, one way

    l_num, l_cat = custom_feature_columns(lead_custom)
    ids = snapshots[T.LEAD_ID].astype("str").where(snapshots[T.LEAD_ID].notna(), None)
    # only the leads these deals came from: the BANT points are the costly part
    wanted = leads[T.LEAD_ID].isin(pd.unique(ids.dropna()))
    lead_rows = leads[wanted.to_numpy()].drop_duplicates(T.LEAD_ID).set_index(T.LEAD_ID)
    pos = lead_rows.index.get_indexer(ids)
    known = pos >= 0
    take = np.where(known, pos, 0)
    points = total_points(lead_rows.reset_index()) if len(lead_rows) else np.zeros(0)
    out: dict[str, Any] = {}

    def pick(values: np.ndarray, fill: Any) -> np.ndarray:
        if len(values) == 0:
            return np.full(len(snapshots), fill, dtype=object if fill is None else np.float64)
        picked = values[take]
        if fill is None:
            picked = picked.astype(object)
            picked[~known] = None
        else:
            picked = np.where(known, picked.astype(np.float64), fill)
        return picked

    for name in LEAD_CATEGORICAL:
        out[name] = pick(_text(lead_rows[name]), None)
    for name in LEAD_NUMERIC:
        out[name] = pick(lead_rows[name].to_numpy(dtype=np.float64, na_value=np.nan), np.nan)
    for name in l_num:
        values = pd.to_numeric(lead_rows[name].astype("Float64"))
        out[lead_custom_feature(name)] = pick(
            values.to_numpy(dtype=np.float64, na_value=np.nan), np.nan
        )
    for name in l_cat:
        out[lead_custom_feature(name)] = pick(_text(lead_rows[name]), None)
    out["lead_bant_points"] = pick(np.asarray(points, dtype=np.float64), np.nan)
    lead_created = lead_rows[T.CREATED_AT].to_numpy("datetime64[us]")
    deal_created = snapshots[T.CREATED_AT].to_numpy("datetime64[us]")
    if len(lead_created):
        age = (deal_created - lead_created[take]) / _DAY
        out["lead_age_at_deal_days"] = np.where(known, age, np.nan)
    else:
        out["lead_age_at_deal_days"] = np.full(len(snapshots), np.nan)
    out.update(_lead_engagement(snapshots, lead_rows, activities, lead_custom))
    # object dtype kept explicitly: pandas >= 3 would otherwise infer its ``str`` dtype
    return pd.DataFrame(
        {
            k: pd.Series(v, index=snapshots.index, dtype=object if v.dtype == object else None)
            for k, v in out.items()
        },
        index=snapshots.index,
    )


def _lead_engagement(
    snapshots: pd.DataFrame,
    lead_rows: pd.DataFrame,
    activities: pd.DataFrame,
    lead_custom: Sequence[Column],
) -> dict[str, np.ndarray]:
    """:data:`LEAD_ENGAGEMENT` of each snapshot's lead at its deal's creation, computed once
    per deal (snapshots repeat deals) with the lead feature function."""
    firsts = snapshots.drop_duplicates(T.DEAL_ID)
    pos = lead_rows.index.get_indexer(
        firsts[T.LEAD_ID].astype("str").where(firsts[T.LEAD_ID].notna(), None)
    )
    known = pos >= 0
    at_creation = lead_rows.reset_index().iloc[pos[known]].reset_index(drop=True)
    at_creation[AS_OF] = firsts[T.CREATED_AT].to_numpy("datetime64[us]")[known]
    per_deal = np.full((len(firsts), len(LEAD_ENGAGEMENT)), np.nan)
    if len(at_creation):
        # the owner record is not used here; a blank outcome keeps lead outcomes unread
        owners = OwnerHistory.from_leads(at_creation.assign(**{T.CONVERTED_AT: pd.NaT}))
        lead = build_lead_features(at_creation, activities, owners, lead_custom)
        per_deal[known] = lead[list(LEAD_ENGAGEMENT)].to_numpy(dtype=np.float64)
    ids = pd.Index(firsts[T.DEAL_ID].astype("str"))
    rows = ids.get_indexer(snapshots[T.DEAL_ID].astype("str"))
    return {lead_custom_feature(name): per_deal[rows, j] for j, name in enumerate(LEAD_ENGAGEMENT)}


def build_close_time_features(
    snapshots: pd.DataFrame,
    *,
    leads: pd.DataFrame,
    stage_history: pd.DataFrame,
    activities: pd.DataFrame,
    owner_deals: OwnerDealHistory,
    deal_custom: Sequence[Column] = (),
    lead_custom: Sequence[Column] = (),
) -> pd.DataFrame:
    """The close-time model's features: :func:`build_deal_features` joined with
    :func:`lead_context_features`; columns as :func:`close_time_feature_encoder` lists them.
    The one feature path for training snapshots, batch outlooks and the HTTP service."""
    deal = build_deal_features(snapshots, stage_history, activities, owner_deals, deal_custom)
    lead = lead_context_features(snapshots, leads, activities, lead_custom)
    names = close_time_feature_encoder(deal_custom, lead_custom).feature_names
    return pd.concat([deal, lead], axis=1)[names]
