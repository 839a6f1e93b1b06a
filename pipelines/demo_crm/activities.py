"""Activities: engagement that follows intent, deal work per stage, and close-date moves.

* Lead phase (creation until conversion, disqualification or the snapshot): a Poisson
  number of touches whose rate is ``∝ exp(0.8·(logit_obs + u))`` (bounded) and decays with
  the lead's age; touch types lean to form submits, calls, meetings and demos when intent is
  high and to email opens and web visits when it is low. Form leads start with a
  ``form_submit`` at creation; converting leads get a burst of calls, meetings and demos in
  the weeks before conversion.
* Deal phase: per stage visit, calls, meetings, WeChat messages, emails and demos at
  stage-specific rates decaying within the visit and scaled by the deal's hidden drive; a
  ``quote_sent`` shortly after entering proposal. These rows carry both lead and deal.
* ``close_date_changed`` rows from :mod:`close_dates`.

Nothing is stamped at or after the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_contracts.truth import N_OPEN_STAGES
from data_contracts.vocabulary import ACTIVITY_TYPES, OPEN_STAGES, codes
from pipelines.demo_crm import parameters as P
from pipelines.demo_crm.close_dates import CloseDateChanges
from pipelines.demo_crm.deals import Deals
from pipelines.demo_crm.frames import NULL_S
from pipelines.demo_crm.leads import Leads
from pipelines.demo_crm.sampling import (
    DAY_S,
    in_office_hours,
    softmax_choice,
    truncated_exponential,
)

ACTIVITY_CODES = codes(ACTIVITY_TYPES)


def _type(code: str) -> int:
    return ACTIVITY_CODES.index(code)


@dataclass(frozen=True)
class ActivityRows:
    """Activities in a deterministic order; -1 for a missing lead/deal, ``NULL_S`` date."""

    occurred_s: np.ndarray
    lead: np.ndarray
    deal: np.ndarray
    type: np.ndarray
    new_day: np.ndarray

    @staticmethod
    def concat(parts: list[ActivityRows]) -> ActivityRows:
        return ActivityRows(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("occurred_s", "lead", "deal", "type", "new_day")
            )
        )

    def sorted(self) -> ActivityRows:
        """Sorted by time; ties keep generation order.

        Sorts one unique int64 key (time × n + position), which is faster than a stable sort.
        """
        n = len(self.occurred_s)
        order = np.argsort(self.occurred_s * n + np.arange(n, dtype=np.int64))
        return ActivityRows(
            self.occurred_s[order], self.lead[order], self.deal[order], self.type[order],
            self.new_day[order],
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.occurred_s)


def _rows(
    occurred_s: np.ndarray, lead: np.ndarray, deal: np.ndarray | None, types: np.ndarray
) -> ActivityRows:
    n = len(occurred_s)
    return ActivityRows(
        occurred_s.astype(np.int64),
        lead.astype(np.int64),
        np.full(n, -1, dtype=np.int64) if deal is None else deal.astype(np.int64),
        np.asarray(types, dtype=np.int16),
        np.full(n, NULL_S, dtype=np.int64),
    )


def engagement(logit_obs: np.ndarray, intent: np.ndarray) -> np.ndarray:
    """Touch-rate multiplier ``exp(0.8·(logit_obs + u - ref))``, bounded."""
    x = P.ENGAGEMENT_COEF * (logit_obs + intent - P.ENGAGEMENT_REF)
    return np.clip(np.exp(x), *P.ENGAGEMENT_BOUNDS)


def lead_touches(rng: np.random.Generator, leads: Leads, cutoff_s: int) -> ActivityRows:
    """Touches during each lead's open life (see the module docstring)."""
    end = np.full(len(leads), cutoff_s - 1, dtype=np.int64)
    for t in (leads.converted_s, leads.disqualified_s):
        end = np.where(t != NULL_S, np.minimum(end, t), end)
    life_days = (end - leads.created_s) / DAY_S
    tau = P.LEAD_TOUCH_DECAY_DAYS
    mean = P.LEAD_TOUCH_RATE * engagement(leads.logit_obs, leads.intent) * tau
    count = rng.poisson(mean * -np.expm1(-life_days / tau))
    lead = np.repeat(np.arange(len(leads)), count)
    offset = truncated_exponential(rng, tau, life_days[lead])
    when = leads.created_s[lead] + np.round(offset * DAY_S).astype(np.int64)
    when = in_office_hours(rng, when, leads.created_s[lead], end[lead])
    names = list(P.LEAD_TOUCH_TYPES)
    weights = np.log([P.LEAD_TOUCH_TYPES[k][0] for k in names])
    slopes = np.array([P.LEAD_TOUCH_TYPES[k][1] for k in names])
    x = leads.logit_obs[lead] + leads.intent[lead] - P.ENGAGEMENT_REF
    pick = softmax_choice(rng, weights, slopes, x)
    types = np.array([_type(k) for k in names])[pick]
    return _rows(when, lead, None, types)


def form_submits(leads: Leads) -> ActivityRows:
    """The form that created each lead arriving through a form (at its creation time)."""
    form_codes = [P.SOURCE_CODES.index(s) for s in P.FORM_SOURCES]
    lead = np.flatnonzero(np.isin(leads.latent["source"], form_codes))
    return _rows(leads.created_s[lead], lead, None, np.full(len(lead), _type("form_submit")))


def conversion_bursts(rng: np.random.Generator, leads: Leads) -> ActivityRows:
    """Calls, meetings and demos in the weeks before each conversion."""
    converted = np.flatnonzero(leads.converted_s != NULL_S)
    count = rng.poisson(P.BURST_MEAN, size=len(converted))
    lead = np.repeat(converted, count)
    conv, created = leads.converted_s[lead], leads.created_s[lead]
    start = np.maximum(created, conv - int(P.BURST_WINDOW_DAYS * DAY_S))
    when = start + (rng.random(len(lead)) * (conv - start)).astype(np.int64)
    when = in_office_hours(rng, when, start, conv)
    names = [name for name, _ in P.BURST_TYPES]
    probs = np.array([p for _, p in P.BURST_TYPES])
    types = np.array([_type(k) for k in names])[rng.choice(len(names), size=len(lead), p=probs)]
    return _rows(when, lead, None, types)


def stage_visits(
    deals: Deals, cutoff_s: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(deal, stage, start_s, end_s)`` per open-stage visit; open deals' last visit ends at
    the snapshot."""
    rows = deals.stages
    order = np.lexsort((rows.entered_s, rows.deal))
    deal, state, start = rows.deal[order], rows.state[order], rows.entered_s[order]
    same_next = np.append(deal[1:] == deal[:-1], False)
    end = np.where(same_next, np.append(start[1:], 0), cutoff_s - 1)
    keep = state < N_OPEN_STAGES
    return deal[keep], state[keep], start[keep], end[keep]


def deal_touches(rng: np.random.Generator, deals: Deals, cutoff_s: int) -> ActivityRows:
    """Work on deals during each stage visit, plus a quote on entering proposal."""
    deal, stage, start, end = stage_visits(deals, cutoff_s)
    visit_days = (end - start) / DAY_S
    tau = P.DEAL_TOUCH_DECAY_DAYS
    drive = np.exp(P.DEAL_TOUCH_INTENT_COEF * (P.DEAL_INTENT_COEF * deals.intent + deals.eta))
    scale = drive[deal] * tau * -np.expm1(-visit_days / tau)
    parts = []
    for k, name in enumerate(P.DEAL_TOUCH_TYPES):
        count = rng.poisson(P.DEAL_TOUCH_RATES[stage, k] * scale)
        visit = np.repeat(np.arange(len(deal)), count)
        offset = truncated_exponential(rng, tau, visit_days[visit])
        when = start[visit] + np.round(offset * DAY_S).astype(np.int64)
        when = in_office_hours(rng, when, start[visit], end[visit])
        d = deal[visit]
        parts.append(_rows(when, deals.lead[d], d, np.full(len(d), _type(name))))
    proposal = np.flatnonzero(stage == OPEN_STAGES.index("proposal"))
    delay = rng.exponential(P.QUOTE_DELAY_MEAN_DAYS, size=len(proposal)) * DAY_S
    span = end[proposal] - start[proposal]
    when = start[proposal] + np.minimum(np.round(delay), span // 2).astype(np.int64)
    d = deal[proposal]
    parts.append(_rows(when, deals.lead[d], d, np.full(len(d), _type("quote_sent"))))
    return ActivityRows.concat(parts)


def close_date_rows(deals: Deals, changes: CloseDateChanges) -> ActivityRows:
    rows = _rows(
        changes.occurred_s,
        deals.lead[changes.deal],
        changes.deal,
        np.full(len(changes.deal), _type("close_date_changed")),
    )
    return ActivityRows(rows.occurred_s, rows.lead, rows.deal, rows.type, changes.new_day)


def draw_activities(
    rngs: dict[str, np.random.Generator],
    leads: Leads,
    deals: Deals,
    changes: CloseDateChanges,
    cutoff_s: int,
) -> ActivityRows:
    """All activities, sorted by time (ties in generation order)."""
    rng = rngs["activities"]
    parts = [
        form_submits(leads),
        lead_touches(rng, leads, cutoff_s),
        conversion_bursts(rng, leads),
        deal_touches(rng, deals, cutoff_s),
        close_date_rows(deals, changes),
    ]
    return ActivityRows.concat(parts).sorted()
