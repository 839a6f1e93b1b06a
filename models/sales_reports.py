"""Sales reports for the managers' review page: stage funnel, lead sources, owners, grades.

Four reports, each a pure function of the contract tables and an explicit ``as_of``:

- :func:`stage_funnel` — deals that reached at least each stage, stage-to-stage
  conversion, won rate from each stage and median days spent in it;
- :func:`source_report` — leads, conversions, deals and won revenue per lead ``source``;
- :func:`owner_report` — follow-up speed, touches, conversion, sales cycle and won revenue
  per ``owner_id``;
- :func:`grade_report` — count, share and observed conversion (Wilson interval) per grade
  A–D, and whether conversion falls monotonically from A to D; with
  :func:`model_grade_report` wiring it to a conversion model scored out of sample.

They return data, never text: field keys are English snake_case, stages and sources are
the vocabulary codes (``data_contracts.vocabulary``) so the page labels them in English or
Simplified Chinese, and every report's ``to_dict()`` is JSON-serialisable (plain ints,
floats and strings; an undefined rate or median is ``None``, never NaN).

**Point in time.** Every report reads only rows stamped strictly before ``as_of``: leads
and deals created before it, stage entries and activities before it; a conversion or a
close stamped at or after ``as_of`` has not happened yet (the lead is unconverted, the
deal open). An optional half-open window ``[start, end)`` keeps the leads (or deals)
*created* in it. The contract keeps no history of a deal's ``amount``, ``owner_id`` or of a
lead's ``owner_id`` and ``source``: their current values are used, which is a leak only if
they were edited after ``as_of``.

**Censoring.** Recent leads and deals have had less time to convert or close, so rates
over a window that ends near ``as_of`` are lower than they will be. The funnel therefore
also reports rates among closed deals only, and time-in-stage medians count completed
stays only; pick a window that ended a horizon ago for mature cohorts.

**Currency.** Amounts are never converted. Won revenue adds deal ``amount`` values of one
currency; if the won deals a report adds hold more than one, it raises ``ValueError``
(convert amounts to one currency in the import mapping). A won deal without an amount
counts as a won deal and adds nothing to revenue; the reports say how many there are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from statistics import NormalDist
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from data_contracts import tables as T
from data_contracts.relations import lookup
from data_contracts.vocabulary import OPEN_STAGES, SOURCES, TERMINAL_STAGES, codes
from features.lead_features import AS_OF, ENGAGEMENT_TYPES, HORIZON_DAYS, OwnerHistory
from models.conversion import ConversionModel
from models.grades import GRADES

#: The lead source column, taken from the leads contract (fails at import if renamed).
SOURCE: Final = T.LEADS.column("source").name
#: Funnel rows: the open stages in order, then ``won``.
WON: Final = "won"
LOST: Final = "lost"
FUNNEL_STAGES: Final[tuple[str, ...]] = (*OPEN_STAGES, WON)
#: Minimum out-of-sample leads :func:`model_grade_report` needs before it reports rates.
MIN_SCORED_LEADS: Final = 200

#: Machine-readable notes a report may carry, with English and Simplified Chinese texts.
TOO_FEW_LEADS: Final = "too_few_out_of_sample_leads"
NO_TRAINING_WINDOW: Final = "model_has_no_training_window"
NOTE_LABELS: Final[dict[str, tuple[str, str]]] = {
    TOO_FEW_LEADS: (
        "Too few leads created after the model's training data, with a full 90-day "
        "outcome, to measure conversion per grade.",
        "模型训练数据之后创建、且已满90天观察期的线索太少，无法按等级统计转化率。",
    ),
    NO_TRAINING_WINDOW: (
        "The model does not record when its training data ended, so it cannot be checked "
        "out of sample. Retrain it.",
        "模型未记录训练数据的截止时间，无法做样本外检验。请重新训练模型。",
    ),
}

_STAGE_RANK: Final = pd.Index([*OPEN_STAGES, *TERMINAL_STAGES])
_N_OPEN: Final = len(OPEN_STAGES)
_DAY_US: Final = 86_400_000_000
_HOUR_US: Final = 3_600_000_000
_NAT: Final = np.iinfo(np.int64).min  # numpy's NaT as int64


# -- JSON-ready values ----------------------------------------------------------------------
def _ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator`` as a float; ``None`` when the denominator is 0."""
    return float(numerator) / float(denominator) if denominator else None


def _finite(value: Any) -> float | None:
    """A plain float, or ``None`` for NaN / missing."""
    if value is None:
        return None
    out = float(value)
    return out if np.isfinite(out) else None


def _iso(value: pd.Timestamp | None) -> str | None:
    return None if value is None else value.isoformat()


# -- inputs ---------------------------------------------------------------------------------
def _instant(value: pd.Timestamp, name: str) -> np.int64:
    """A naive timestamp as int64 microseconds (the contract's timestamps are naive UTC)."""
    ts = pd.Timestamp(value)
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"{name} must be a timestamp; got {value!r}")
    if ts.tzinfo is not None:
        raise ValueError(
            f"{name} = {ts} carries a time zone; contract timestamps are naive UTC: pass "
            f"{name}.tz_convert('UTC').tz_localize(None)"
        )
    return np.int64(np.datetime64(ts.to_datetime64(), "us").astype(np.int64))


def _micros(frame: pd.DataFrame, column: str) -> npt.NDArray[np.int64]:
    """A datetime column as int64 microseconds; NaT becomes the int64 minimum, so a missing
    time is never ``>=`` anything (use :func:`_before` for "stamped before")."""
    return frame[column].to_numpy("datetime64[us]").astype(np.int64)


def _before(times: npt.NDArray[np.int64], cut: np.int64) -> npt.NDArray[np.bool_]:
    """Stamped (not missing) and strictly before ``cut``."""
    return (times != _NAT) & (times < cut)


def _window(
    created: npt.NDArray[np.int64],
    as_of: np.int64,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> npt.NDArray[np.bool_]:
    """Created before ``as_of`` and inside ``[start, end)`` (either bound optional)."""
    keep = _before(created, as_of)
    lo = _instant(start, "start") if start is not None else None
    hi = _instant(end, "end") if end is not None else None
    if lo is not None and hi is not None and not hi > lo:
        raise ValueError(f"the window must end after it starts; got start={start}, end={end}")
    if lo is not None:
        keep &= created >= lo
    if hi is not None:
        keep &= created < hi
    return keep


def _keys(values: pd.Series) -> npt.NDArray[np.object_]:
    """A key column as an object array of ``str``, ``None`` where missing."""
    out = values.astype(object).to_numpy(dtype=object, copy=True)
    out[pd.isna(out)] = None
    return out


def _factorize(
    keys: npt.NDArray[np.object_], vocabulary: Sequence[str] = ()
) -> tuple[list[str | None], npt.NDArray[np.int64]]:
    """The distinct keys in report order — vocabulary order first, then other codes
    alphabetically, ``None`` (missing) last — and each value's position in that list."""
    found, uniques = pd.factorize(pd.Series(keys, dtype=object), use_na_sentinel=True)
    present = {str(u) for u in uniques}
    order: list[str | None] = [c for c in vocabulary if c in present]
    order += sorted(present.difference(vocabulary))
    position = pd.Index([k for k in order if k is not None]).get_indexer([str(u) for u in uniques])
    if (found < 0).any():
        order.append(None)
        position = np.append(position, len(order) - 1)
    return order, position[found].astype(np.int64)


def _currency(deals: pd.DataFrame, mask: npt.NDArray[np.bool_], where: str) -> str | None:
    """The one currency of the deals selected by ``mask``; ``None`` when none is selected."""
    values = pd.unique(deals[T.CURRENCY].to_numpy(dtype=object)[mask])
    found = [str(c) for c in values if not pd.isna(c)]
    if len(found) > 1:
        counts = deals.loc[mask, T.CURRENCY].value_counts().to_dict()
        raise ValueError(
            f"{where}: won deals hold amounts in more than one currency {counts}; revenue is "
            "never converted. Convert amounts to one currency in the import mapping, or "
            "report each currency's deals separately."
        )
    return found[0] if found else None


def _won_before(deals: pd.DataFrame, as_of: np.int64) -> npt.NDArray[np.bool_]:
    """Won, with ``closed_at`` strictly before ``as_of``."""
    outcome = deals[T.OUTCOME].to_numpy(dtype=object)
    return _before(_micros(deals, T.CLOSED_AT), as_of) & (outcome == WON)


def _amounts(deals: pd.DataFrame) -> npt.NDArray[np.float64]:
    return deals[T.AMOUNT].to_numpy(dtype=np.float64, na_value=np.nan)


def _group_median(
    values: npt.NDArray[np.float64], groups: npt.NDArray[np.int64], n: int
) -> list[float | None]:
    """Median of the finite ``values`` per group ``0..n-1`` (``None`` for an empty group)."""
    ok = np.isfinite(values)
    med = pd.Series(values[ok]).groupby(groups[ok]).median()
    return [_finite(med.get(g)) for g in range(n)]


# -- 1. stage funnel ------------------------------------------------------------------------
@dataclass(frozen=True)
class FunnelStage:
    """One funnel row.

    ``reached``: deals that reached at least this stage. ``conversion_to_next``: share of
    them that reached at least the next stage. ``won_rate``: share of them won by
    ``as_of``; ``won_rate_closed``: the same among the ``closed`` ones (won or lost by
    ``as_of``), less biased by deals still open. ``in_stage_now``: deals open at ``as_of``
    whose latest stage is this one. ``median_days``: median length of the completed stays
    in this stage (``completed_stays`` of them); ``open_stays``: stays still running at
    ``as_of``, left out of the median. The ``won`` row has only ``reached``/``closed``.
    """

    stage: str
    reached: int
    conversion_to_next: float | None
    won_rate: float | None
    closed: int
    won_rate_closed: float | None
    in_stage_now: int | None
    median_days: float | None
    completed_stays: int
    open_stays: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StageFunnel:
    """The stage funnel at ``as_of`` of the deals created in ``[start, end)``."""

    as_of: pd.Timestamp
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    deals: int
    won: int
    lost: int
    open: int
    stages: tuple[FunnelStage, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": _iso(self.as_of),
            "start": _iso(self.start),
            "end": _iso(self.end),
            "deals": self.deals,
            "won": self.won,
            "lost": self.lost,
            "open": self.open,
            "stages": [s.to_dict() for s in self.stages],
        }


def stage_funnel(
    deals: pd.DataFrame,
    stage_history: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> StageFunnel:
    """The funnel of the deals created in ``[start, end)`` and before ``as_of``.

    Inputs: the ``deals`` and ``stage_history`` contract tables. Output: one
    :class:`FunnelStage` per stage of :data:`FUNNEL_STAGES` (the open stages in order,
    then ``won``).

    *Reached at least* (as Odoo counts it): a deal reached stage *k* when its furthest
    open stage entered before ``as_of`` is *k* or later — a deal in negotiation reached
    qualification…negotiation even if rows for skipped stages are missing, and a deal that
    fell back still counts for the furthest stage it reached. Every created deal reached
    the first stage (its history may be empty); a deal won before ``as_of`` (per the deals
    table) reached every stage and ``won``. Consequently counts never increase down the
    funnel.

    *Days in stage* are measured per stay: from a stage entry to the deal's next entry, or
    for a deal's last entry to its ``closed_at`` when it closed before ``as_of``. A deal
    open at ``as_of`` (also one that closes later) has its last stay censored: that stay
    is counted in ``open_stays`` and left out of the median (the median of completed stays
    is thus biased towards short stays while many deals are open). A deal re-entering a
    stage after falling back has one stay per entry. Stays with a negative length (a
    ``closed_at`` before the entry, bad data) are dropped; stages skipped without a row
    have no stay.

    Leakage: uses only deals created, stage entries stamped and closes stamped strictly
    before ``as_of``.
    """
    cut = _instant(as_of, "as_of")
    keep = _window(_micros(deals, T.CREATED_AT), cut, start, end)
    d = deals.loc[keep, [T.DEAL_ID, T.CLOSED_AT, T.OUTCOME]]
    n = len(d)
    closed_at = _micros(d, T.CLOSED_AT)
    outcome = d[T.OUTCOME].to_numpy(dtype=object)
    done = _before(closed_at, cut) & np.isin(outcome, [WON, LOST])
    won = done & (outcome == WON)

    entered = _micros(stage_history, T.ENTERED_AT)
    deal_pos = lookup(stage_history[T.DEAL_ID], d[T.DEAL_ID])
    rank = _STAGE_RANK.get_indexer(stage_history[T.STAGE].to_numpy(dtype=object))
    rows = (deal_pos >= 0) & _before(entered, cut) & (rank >= 0)
    deal_pos, rank, entered = deal_pos[rows], rank[rows].astype(np.int64), entered[rows]
    order = np.lexsort((entered, deal_pos))
    deal_pos, rank, entered = deal_pos[order], rank[order], entered[order]

    is_open_row = rank < _N_OPEN
    reached = np.zeros(n, dtype=np.int64)
    np.maximum.at(reached, deal_pos[is_open_row], rank[is_open_row])
    reached[won] = _N_OPEN  # won implies every open stage, whatever rows are missing

    # the deal's latest entry: its stage now (open deals); no entry yet = first stage
    last_row = np.append(deal_pos[1:] != deal_pos[:-1], len(deal_pos) > 0)[: len(deal_pos)]
    current = np.zeros(n, dtype=np.int64)
    current[deal_pos[last_row]] = rank[last_row]
    open_deal = ~done

    # stays: entry → next entry of the same deal, or → closed_at for a closed deal's last
    has_next = ~last_row
    stay_end = np.where(has_next, np.append(entered[1:], 0), closed_at[deal_pos])
    completed = has_next | done[deal_pos]
    days = (stay_end - entered) / _DAY_US
    counted = is_open_row & completed & (days >= 0)
    censored = is_open_row & ~completed

    reached_counts = [int((reached >= k).sum()) for k in range(_N_OPEN + 1)]
    closed_counts = [int((done & (reached >= k)).sum()) for k in range(_N_OPEN + 1)]
    n_won = int(won.sum())
    medians = _group_median(np.where(counted, days, np.nan), rank, _N_OPEN)
    stages = []
    for k, stage in enumerate(FUNNEL_STAGES):
        is_won = k == _N_OPEN
        stages.append(
            FunnelStage(
                stage=stage,
                reached=reached_counts[k],
                conversion_to_next=(
                    None if is_won else _ratio(reached_counts[k + 1], reached_counts[k])
                ),
                won_rate=_ratio(n_won, reached_counts[k]),
                closed=closed_counts[k],
                won_rate_closed=_ratio(n_won, closed_counts[k]),
                in_stage_now=None if is_won else int((open_deal & (current == k)).sum()),
                median_days=None if is_won else medians[k],
                completed_stays=0 if is_won else int((counted & (rank == k)).sum()),
                open_stays=0 if is_won else int((censored & (rank == k)).sum()),
            )
        )
    return StageFunnel(
        as_of=pd.Timestamp(as_of),
        start=None if start is None else pd.Timestamp(start),
        end=None if end is None else pd.Timestamp(end),
        deals=n,
        won=n_won,
        lost=int((done & (outcome == LOST)).sum()),
        open=int(open_deal.sum()),
        stages=tuple(stages),
    )


# -- 2. by lead source ----------------------------------------------------------------------
@dataclass(frozen=True)
class LeadOutcomes:
    """Lead and deal counts of a group of leads.

    ``converted``: leads with ``converted_at`` before ``as_of``; ``conversion_rate`` =
    converted / leads. ``deals``: deals of these leads created before ``as_of``;
    ``won_deals``: those won before ``as_of``; ``won_revenue``: the sum of their amounts
    (in the report's currency; ``won_deals_without_amount`` add nothing);
    ``average_won_deal``: mean amount of the won deals that have one.
    """

    leads: int
    converted: int
    conversion_rate: float | None
    deals: int
    won_deals: int
    won_revenue: float
    average_won_deal: float | None
    won_deals_without_amount: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SourceRow:
    """One lead source (a ``SOURCES`` code; ``None`` for leads without a source)."""

    source: str | None
    outcomes: LeadOutcomes

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, **self.outcomes.to_dict()}


@dataclass(frozen=True)
class SourceReport:
    """Per-source outcomes of the leads created in ``[start, end)``, and their total."""

    as_of: pd.Timestamp
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    currency: str | None
    sources: tuple[SourceRow, ...]
    total: LeadOutcomes

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": _iso(self.as_of),
            "start": _iso(self.start),
            "end": _iso(self.end),
            "currency": self.currency,
            "sources": [s.to_dict() for s in self.sources],
            "total": self.total.to_dict(),
        }


def _outcomes(column: npt.NDArray[np.float64]) -> LeadOutcomes:
    """A :class:`LeadOutcomes` from the vector (leads, converted, deals, won, revenue,
    won with an amount)."""
    leads, converted, deals, won, revenue, priced = (float(v) for v in column)
    return LeadOutcomes(
        leads=int(leads),
        converted=int(converted),
        conversion_rate=_ratio(converted, leads),
        deals=int(deals),
        won_deals=int(won),
        won_revenue=revenue,
        average_won_deal=_ratio(revenue, priced),
        won_deals_without_amount=int(won - priced),
    )


def source_report(
    leads: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> SourceReport:
    """Leads, conversions, deals and won revenue per lead ``source``.

    Inputs: the ``leads`` and ``deals`` contract tables. The group is the leads created in
    ``[start, end)`` and before ``as_of``; deals count for the source of the lead they
    came from (``deals.lead_id``), whenever that deal was created before ``as_of`` — a
    cohort view (deals without a lead, or of leads outside the window, are not counted).
    Output: one :class:`SourceRow` per source present, in vocabulary order (other codes
    alphabetically, missing source last), and the total.

    Leakage: a lead counts as converted only if ``converted_at < as_of``; a deal as won
    only if ``closed_at < as_of``. Censoring: leads created shortly before ``as_of`` have
    had little time to convert. Raises ``ValueError`` if the won deals counted hold more
    than one currency.
    """
    cut = _instant(as_of, "as_of")
    keep = _window(_micros(leads, T.CREATED_AT), cut, start, end)
    lead_frame = leads.loc[keep, [T.LEAD_ID, SOURCE, T.CONVERTED_AT]]
    names, group = _factorize(_keys(lead_frame[SOURCE]), codes(SOURCES))
    g = len(names)
    converted = _before(_micros(lead_frame, T.CONVERTED_AT), cut)

    lead_pos = lookup(deals[T.LEAD_ID], lead_frame[T.LEAD_ID])
    counted = (lead_pos >= 0) & _before(_micros(deals, T.CREATED_AT), cut)
    won = counted & _won_before(deals, cut)
    currency = _currency(deals, won, "source report")
    amount = _amounts(deals)
    priced = won & np.isfinite(amount)
    deal_group = np.where(counted, group[np.maximum(lead_pos, 0)] if g else 0, 0)

    # one row per measure (as _outcomes reads them), one column per source
    table = np.vstack(
        [
            np.bincount(group, minlength=g),
            np.bincount(group[converted], minlength=g),
            np.bincount(deal_group[counted], minlength=g),
            np.bincount(deal_group[won], minlength=g),
            np.bincount(deal_group[priced], weights=amount[priced], minlength=g),
            np.bincount(deal_group[priced], minlength=g),
        ]
    ).astype(np.float64)
    return SourceReport(
        as_of=pd.Timestamp(as_of),
        start=None if start is None else pd.Timestamp(start),
        end=None if end is None else pd.Timestamp(end),
        currency=currency,
        sources=tuple(SourceRow(names[i], _outcomes(table[:, i])) for i in range(g)),
        total=_outcomes(table.sum(axis=1)),
    )


# -- 3. follow-up efficiency per owner ------------------------------------------------------
@dataclass(frozen=True)
class OwnerRow:
    """One owner (``None``: leads or deals without an owner).

    Lead side (the owner's leads created in the window): ``leads``;
    ``median_hours_to_first_touch`` over the touched leads; ``untouched_share`` of leads
    with no touch before ``as_of``; ``touches_per_lead``; ``converted`` and
    ``conversion_rate``. Deal side (the owner's deals created in the window):
    ``deals``, ``won_deals``, ``median_sales_cycle_days`` (created → closed of the won
    deals), ``won_revenue`` and ``won_deals_without_amount``.
    """

    owner_id: str | None
    leads: int
    touched_leads: int
    median_hours_to_first_touch: float | None
    untouched_share: float | None
    touches_per_lead: float | None
    converted: int
    conversion_rate: float | None
    deals: int
    won_deals: int
    median_sales_cycle_days: float | None
    won_revenue: float
    won_deals_without_amount: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class OwnerReport:
    """Follow-up efficiency per owner at ``as_of`` (owners sorted by id, missing last)."""

    as_of: pd.Timestamp
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    currency: str | None
    touch_types: tuple[str, ...]
    owners: tuple[OwnerRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": _iso(self.as_of),
            "start": _iso(self.start),
            "end": _iso(self.end),
            "currency": self.currency,
            "touch_types": list(self.touch_types),
            "owners": [o.to_dict() for o in self.owners],
        }


def first_touches(
    lead_ids: pd.Series,
    created_at: pd.Series,
    activities: pd.DataFrame,
    as_of: pd.Timestamp,
    touch_types: Sequence[str] = ENGAGEMENT_TYPES,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Hours from each lead's creation to its first touch, and its number of touches.

    A touch is an activity carrying the lead's ``lead_id`` (lead or deal phase) whose type
    is in ``touch_types`` and that is stamped strictly after the lead's ``created_at`` and
    strictly before ``as_of``. Entries at the creation instant are not touches: they are the
    lead arriving (a web form creates the lead with a ``form_submit`` stamped at that very
    second), not anybody following up. Output arrays align with ``lead_ids``; hours are NaN
    for a lead not touched before ``as_of``.
    """
    cut = _instant(as_of, "as_of")
    n = len(lead_ids)
    if n == 0:
        return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int64)
    created = created_at.to_numpy("datetime64[us]").astype(np.int64)
    acts = activities[
        activities[T.LEAD_ID].notna() & activities[T.ACTIVITY_TYPE].isin(list(touch_types))
    ]
    when = _micros(acts, T.OCCURRED_AT)
    pos = lookup(acts[T.LEAD_ID], lead_ids)
    safe = np.where(pos >= 0, pos, 0)
    touch = (pos >= 0) & _before(when, cut) & (when > created[safe])
    pos, when = pos[touch], when[touch]
    counts = np.bincount(pos, minlength=n).astype(np.int64)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, pos, when)
    hours = np.where(counts > 0, (first - created) / _HOUR_US, np.nan)
    return hours, counts


def owner_report(
    leads: pd.DataFrame,
    deals: pd.DataFrame,
    activities: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    touch_types: Sequence[str] = ENGAGEMENT_TYPES,
) -> OwnerReport:
    """Follow-up efficiency per ``owner_id``.

    Inputs: the ``leads``, ``deals`` and ``activities`` contract tables; ``touch_types``
    the activity types that count as touches (default: the engagement types, i.e. all but
    the ``close_date_changed`` bookkeeping; see :func:`first_touches` for what a touch is).
    Lead figures group the leads created in ``[start, end)`` before ``as_of`` by the lead's
    owner; deal figures group the deals created in ``[start, end)`` before ``as_of`` by the
    *deal's* owner (who may differ from the lead's: the one who closes it). The sales cycle
    is ``closed_at − created_at`` of each deal won before ``as_of``, in days.

    Leakage: touches, conversions and closes count only when stamped before ``as_of``.
    Censoring: a lead created just before ``as_of`` may be untouched only because it is new,
    so ``untouched_share`` over a recent window overstates neglect; ``median_hours`` is over
    touched leads only. Raises ``ValueError`` if the won deals hold more than one currency.
    """
    cut = _instant(as_of, "as_of")
    keep = _window(_micros(leads, T.CREATED_AT), cut, start, end)
    lead_frame = leads.loc[keep, [T.LEAD_ID, T.CREATED_AT, T.OWNER_ID, T.CONVERTED_AT]]
    hours, touches = first_touches(
        lead_frame[T.LEAD_ID], lead_frame[T.CREATED_AT], activities, as_of, touch_types
    )
    converted = _before(_micros(lead_frame, T.CONVERTED_AT), cut)

    deal_created = _micros(deals, T.CREATED_AT)
    in_deals = _window(deal_created, cut, start, end)
    deal_frame = deals.loc[in_deals]
    won = _won_before(deal_frame, cut)
    currency = _currency(deal_frame, won, "owner report")
    amount = _amounts(deal_frame)
    priced = won & np.isfinite(amount)
    cycle = np.where(
        won, (_micros(deal_frame, T.CLOSED_AT) - deal_created[in_deals]) / _DAY_US, np.nan
    )

    owners = np.concatenate([_keys(lead_frame[T.OWNER_ID]), _keys(deal_frame[T.OWNER_ID])])
    names, group = _factorize(owners)
    g = len(names)
    lg, dg = group[: len(lead_frame)], group[len(lead_frame) :]
    n_leads = np.bincount(lg, minlength=g)
    touched = np.bincount(lg[touches > 0], minlength=g)
    n_touches = np.bincount(lg, weights=touches, minlength=g)
    n_converted = np.bincount(lg[converted], minlength=g)
    n_deals = np.bincount(dg, minlength=g)
    n_won = np.bincount(dg[won], minlength=g)
    n_priced = np.bincount(dg[priced], minlength=g)
    revenue = np.bincount(dg[priced], weights=amount[priced], minlength=g)
    median_hours = _group_median(hours, lg, g)
    median_cycle = _group_median(cycle, dg, g)
    rows = tuple(
        OwnerRow(
            owner_id=names[i],
            leads=int(n_leads[i]),
            touched_leads=int(touched[i]),
            median_hours_to_first_touch=median_hours[i],
            untouched_share=_ratio(n_leads[i] - touched[i], n_leads[i]),
            touches_per_lead=_ratio(n_touches[i], n_leads[i]),
            converted=int(n_converted[i]),
            conversion_rate=_ratio(n_converted[i], n_leads[i]),
            deals=int(n_deals[i]),
            won_deals=int(n_won[i]),
            median_sales_cycle_days=median_cycle[i],
            won_revenue=float(revenue[i]),
            won_deals_without_amount=int(n_won[i] - n_priced[i]),
        )
        for i in range(g)
    )
    return OwnerReport(
        as_of=pd.Timestamp(as_of),
        start=None if start is None else pd.Timestamp(start),
        end=None if end is None else pd.Timestamp(end),
        currency=currency,
        touch_types=tuple(touch_types),
        owners=rows,
    )


# -- 4. grades ------------------------------------------------------------------------------
def wilson_interval(
    successes: int, trials: int, confidence: float = 0.95
) -> tuple[float | None, float | None]:
    """Wilson score interval for a binomial proportion; ``(None, None)`` for 0 trials."""
    if trials <= 0:
        return None, None
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * np.sqrt(p * (1.0 - p) / trials + z2n / (4.0 * trials)) / (1.0 + z2n)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


@dataclass(frozen=True)
class GradeRow:
    """One grade: ``count`` and ``share`` of all graded leads, ``converted`` and the
    observed ``conversion_rate`` with its Wilson interval ``[ci_low, ci_high]``, and the
    ``mean_probability`` the model gave them (``None`` when not supplied)."""

    grade: str
    count: int
    share: float | None
    converted: int
    conversion_rate: float | None
    ci_low: float | None
    ci_high: float | None
    mean_probability: float | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GradeReport:
    """Grade distribution and observed conversion per grade.

    ``monotone``: the observed rates strictly fall A > B > C > D over the grades that have
    leads (``None`` with fewer than two such grades). ``intervals_separated``: moreover
    each of those grades' interval lies wholly above the next one's — the stronger
    evidence that the order is not sampling noise (``None`` likewise).
    """

    n: int
    converted: int
    conversion_rate: float | None
    confidence: float
    grades: tuple[GradeRow, ...]
    monotone: bool | None
    intervals_separated: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "converted": self.converted,
            "conversion_rate": self.conversion_rate,
            "confidence": self.confidence,
            "grades": [g.to_dict() for g in self.grades],
            "monotone": self.monotone,
            "intervals_separated": self.intervals_separated,
        }


def grade_report(
    grades: npt.ArrayLike,
    outcomes: npt.ArrayLike,
    *,
    probabilities: npt.ArrayLike | None = None,
    confidence: float = 0.95,
) -> GradeReport:
    """Count, share and observed conversion (Wilson interval) per grade A–D.

    Inputs: ``grades`` — ``"A"``…``"D"`` per lead; ``outcomes`` — 1 if the lead converted
    (within the horizon the grades predict), else 0; optionally the ``probabilities`` the
    grades came from. All aligned, one entry per lead. Output: a :class:`GradeReport` with
    all four grades in order (an empty grade has count 0 and ``None`` rates). Pure: the
    honesty of the evidence depends on the caller passing out-of-sample outcomes (see
    :func:`model_grade_report`). Raises ``ValueError`` naming the first bad position.
    """
    g = np.asarray(grades, dtype=object).ravel()
    y_raw = np.asarray(outcomes).ravel()
    if len(g) != len(y_raw):
        raise ValueError(f"grades ({len(g)}) and outcomes ({len(y_raw)}) differ in length")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1; got {confidence}")
    index = pd.Index(GRADES).get_indexer(g)
    if (index < 0).any():
        at = int(np.flatnonzero(index < 0)[0])
        raise ValueError(f"grade {g[at]!r} at position {at} is not one of {list(GRADES)}")
    y = pd.to_numeric(pd.Series(y_raw), errors="coerce").to_numpy(np.float64)
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        value = y_raw[at].item() if isinstance(y_raw[at], np.generic) else y_raw[at]
        raise ValueError(f"outcome {value!r} at position {at} is not 0 or 1")
    counts = np.bincount(index, minlength=len(GRADES))
    wins = np.bincount(index, weights=y, minlength=len(GRADES))
    mean_p: list[float | None] = [None] * len(GRADES)
    if probabilities is not None:
        p = np.asarray(probabilities, dtype=np.float64).ravel()
        if len(p) != len(g):
            raise ValueError(f"probabilities ({len(p)}) and grades ({len(g)}) differ in length")
        sums = np.bincount(index, weights=p, minlength=len(GRADES))
        mean_p = [_ratio(sums[i], counts[i]) for i in range(len(GRADES))]
    n = len(g)
    rows = []
    for i, name in enumerate(GRADES):
        low, high = wilson_interval(int(wins[i]), int(counts[i]), confidence)
        rows.append(
            GradeRow(
                grade=name,
                count=int(counts[i]),
                share=_ratio(counts[i], n),
                converted=int(wins[i]),
                conversion_rate=_ratio(wins[i], counts[i]),
                ci_low=low,
                ci_high=high,
                mean_probability=mean_p[i],
            )
        )
    present = [r for r in rows if r.count > 0]
    monotone: bool | None = None
    separated: bool | None = None
    if len(present) >= 2:
        pairs = list(pairwise(present))
        monotone = all(_gt(a.conversion_rate, b.conversion_rate) for a, b in pairs)
        separated = monotone and all(_gt(a.ci_low, b.ci_high) for a, b in pairs)
    return GradeReport(
        n=n,
        converted=int(wins.sum()),
        conversion_rate=_ratio(wins.sum(), n),
        confidence=float(confidence),
        grades=tuple(rows),
        monotone=monotone,
        intervals_separated=separated,
    )


def _gt(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a > b


@dataclass(frozen=True)
class ModelGradeReport:
    """The model's grades against what happened, out of sample.

    ``scored_from``: leads created from this time on are out of sample (``None`` if the
    model does not say when its data ended); ``created_before``: ``as_of`` − 90 days, so
    each scored lead's 90-day outcome is known. ``n_leads`` leads qualify; with fewer than
    ``min_leads`` (or no training window) ``grades`` is ``None`` and ``note`` says why (a
    :data:`NOTE_LABELS` code).
    """

    as_of: pd.Timestamp
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    horizon_days: int
    scored_from: pd.Timestamp | None
    created_before: pd.Timestamp
    n_leads: int
    min_leads: int
    note: str | None
    grades: GradeReport | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": _iso(self.as_of),
            "start": _iso(self.start),
            "end": _iso(self.end),
            "horizon_days": self.horizon_days,
            "scored_from": _iso(self.scored_from),
            "created_before": _iso(self.created_before),
            "n_leads": self.n_leads,
            "min_leads": self.min_leads,
            "note": self.note,
            "grades": None if self.grades is None else self.grades.to_dict(),
        }


def out_of_sample_start(meta: Mapping[str, Any]) -> pd.Timestamp | None:
    """The first lead-creation time a conversion model has not learnt from.

    Reads the split windows ``models.conversion_training`` stores in ``model.meta``: the
    booster learnt from training snapshots and the calibrator from validation snapshots
    (``as_of`` before ``validation_end``) whose 90-day labels resolved by
    ``validation_end + 90 d``; that is also where the held-out test period starts after
    the purge gap. Leads created from the later of the two on never appeared in a fitted
    row, and no outcome the model saw resolved after their creation (so a shared shock of
    their month cannot leak in either). ``None`` when the windows are missing.
    """
    windows = meta.get("windows")
    if not isinstance(windows, Mapping) or "validation_end" not in windows:
        return None
    bound = pd.Timestamp(windows["validation_end"]) + pd.Timedelta(days=HORIZON_DAYS)
    if "test_start" in windows:
        bound = max(bound, pd.Timestamp(windows["test_start"]))
    return bound


def model_grade_report(
    model: ConversionModel,
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    min_leads: int = MIN_SCORED_LEADS,
    confidence: float = 0.95,
) -> ModelGradeReport:
    """Grade each out-of-sample lead as of its creation, then compare with its outcome.

    Inputs: a loaded conversion model; ``tables`` holding the ``leads`` and ``activities``
    contract tables (keys as in ``data_contracts.tables``). The leads scored are those
    created in ``[start, end)`` and in ``[scored_from, as_of − 90 d]`` (see
    :func:`out_of_sample_start`): each is scored with ``as_of`` = its ``created_at`` (the
    features see only activities strictly before it), and its outcome is 1 when it
    converted within 90 days of creation — known for all of them by ``as_of``.

    The owner-record features are rebuilt point in time from the leads visible at
    ``as_of`` (as in training), not read from the model's bundle: the bundle's record is
    frozen at the training data's end and would give no owner record at an earlier time,
    a feature distribution the model never saw. Nothing the model returns at a lead's
    creation depends on events after it. The test period also chose the champion, so the
    report is out of sample for fitting, not for model selection.

    Returns the report with ``note`` and no grades when fewer than ``min_leads`` leads
    qualify or the model lacks its training windows — never invented numbers.
    """
    cut = _instant(as_of, "as_of")
    leads = tables[T.LEADS.name]
    activities = tables[T.ACTIVITIES.name]
    horizon = pd.Timedelta(days=HORIZON_DAYS)
    created_before = pd.Timestamp(as_of) - horizon
    scored_from = out_of_sample_start(model.meta)
    report = ModelGradeReport(
        as_of=pd.Timestamp(as_of),
        start=None if start is None else pd.Timestamp(start),
        end=None if end is None else pd.Timestamp(end),
        horizon_days=HORIZON_DAYS,
        scored_from=scored_from,
        created_before=created_before,
        n_leads=0,
        min_leads=min_leads,
        note=NO_TRAINING_WINDOW,
        grades=None,
    )
    if scored_from is None:
        return report

    created = _micros(leads, T.CREATED_AT)
    visible = leads.loc[_before(created, cut)].copy()
    for column in (T.CONVERTED_AT, T.DISQUALIFIED_AT):
        # outcomes stamped at or after as_of have not happened yet
        visible[column] = visible[column].where(visible[column] < pd.Timestamp(as_of))
    v_created = _micros(visible, T.CREATED_AT)
    eligible = (
        _window(v_created, cut, start, end)
        & (v_created >= _instant(scored_from, "scored_from"))
        & (v_created <= _instant(created_before, "as_of - horizon"))
    )
    n = int(eligible.sum())
    report = dataclasses.replace(report, n_leads=n, note=None)
    if n < min_leads:
        return dataclasses.replace(report, note=TOO_FEW_LEADS)

    snapshots = visible.loc[eligible].assign(
        **{AS_OF: visible.loc[eligible, T.CREATED_AT].to_numpy("datetime64[us]")}
    )
    converted = _micros(snapshots, T.CONVERTED_AT)
    deadline = _micros(snapshots, T.CREATED_AT) + HORIZON_DAYS * _DAY_US
    outcome = _before(converted, np.int64(cut)) & (converted < deadline)
    point_in_time = dataclasses.replace(model, owner_history=OwnerHistory.from_leads(visible))
    acts = activities.loc[_before(_micros(activities, T.OCCURRED_AT), cut)]
    scored, _ = point_in_time.score(snapshots, acts)
    graded = grade_report(
        scored["grade"].to_numpy(dtype=object),
        outcome.astype(np.int8),
        probabilities=scored["probability"].to_numpy(np.float64),
        confidence=confidence,
    )
    return dataclasses.replace(report, grades=graded)


__all__ = [
    "FUNNEL_STAGES",
    "MIN_SCORED_LEADS",
    "NOTE_LABELS",
    "NO_TRAINING_WINDOW",
    "SOURCE",
    "TOO_FEW_LEADS",
    "FunnelStage",
    "GradeReport",
    "GradeRow",
    "LeadOutcomes",
    "ModelGradeReport",
    "OwnerReport",
    "OwnerRow",
    "SourceReport",
    "SourceRow",
    "StageFunnel",
    "first_touches",
    "grade_report",
    "model_grade_report",
    "out_of_sample_start",
    "owner_report",
    "source_report",
    "stage_funnel",
    "wilson_interval",
]
