"""Deals: one per converted lead, moving through the stages as a continuous-time Markov chain.

From open stage ``i`` a deal advances at rate ``advance_i`` (from negotiation: won), is lost
at ``lose_i`` and falls back at ``regress_i``; the per-deal rates are the base rates times
``exp`` of the deal's effects (amount, product, rep skill, competitor, the lead's hidden
intent ``u`` and a deal-level hidden ``eta``). ``data_contracts.truth`` holds the exact laws
these rates imply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_contracts.truth import (
    LOST_STATE,
    N_OPEN_STAGES,
    WON_STATE,
    deal_mean_time_to_win,
    deal_win_probability,
)
from pipelines.demo_crm import parameters as P
from pipelines.demo_crm.frames import NULL_S
from pipelines.demo_crm.leads import Leads
from pipelines.demo_crm.owners import Owners
from pipelines.demo_crm.sampling import DAY_S, conditional

OPEN, WON, LOST = 0, 1, 2  # outcome codes, as in the OUTCOMES vocabulary order


@dataclass(frozen=True)
class StageRows:
    """Stage entries (one row each), in simulation order: deal index, state 0–5, time."""

    deal: np.ndarray
    state: np.ndarray
    entered_s: np.ndarray


@dataclass(frozen=True)
class Deals:
    """All deals, in creation order (ties by lead). ``lead`` indexes the leads."""

    lead: np.ndarray
    created_s: np.ndarray
    owner: np.ndarray
    amount: np.ndarray  # the true amount; drives the rates
    amount_recorded: np.ndarray  # as entered, NaN when missing
    product: np.ndarray
    competitor: np.ndarray
    intent: np.ndarray
    eta: np.ndarray
    rates: np.ndarray  # (n, 12), per day, truth.DEAL_RATE_COLUMNS order
    p_win: np.ndarray
    mean_days_to_win: np.ndarray
    outcome: np.ndarray
    closed_s: np.ndarray
    stage_at_cutoff: np.ndarray  # last open stage for open deals
    lost_reason: np.ndarray  # -1 unless lost
    stages: StageRows

    def __len__(self) -> int:
        return len(self.lead)


def deal_rates(
    amount: np.ndarray,
    product: np.ndarray,
    skill: np.ndarray,
    competitor: np.ndarray,
    intent: np.ndarray,
    eta: np.ndarray,
) -> np.ndarray:
    """Per-deal stage rates ``(n, 12)`` (advance, lose, regress for stages 0–3), per day."""
    log_amount = np.log(np.maximum(amount, 1.0) / P.AMOUNT_PIVOT)
    hidden = P.DEAL_INTENT_COEF * intent + eta
    speed = (
        hidden
        + P.DEAL_SKILL_COEF * skill
        + P.AMOUNT_ADVANCE_SLOPE * log_amount
        + P.PRODUCT_ADVANCE_EFFECT[product]
    )
    loss = (
        -hidden
        - P.DEAL_SKILL_COEF * skill
        + P.COMPETITOR_LOSE_EFFECT * competitor
        + P.AMOUNT_LOSE_SLOPE * log_amount
        + P.PRODUCT_LOSE_EFFECT[product]
    )
    advance = P.BASE_ADVANCE[None, :] * np.exp(speed)[:, None]
    lose = P.BASE_LOSE[None, :] * np.exp(loss)[:, None]
    regress = P.BASE_REGRESS[None, :] * np.exp(loss / 2)[:, None]
    return np.concatenate([advance, lose, regress], axis=1)


def draw_amounts(
    rng: np.random.Generator,
    size: np.ndarray,
    industry: np.ndarray,
    product: np.ndarray,
    budget: np.ndarray,
) -> np.ndarray:
    """Deal amounts in CNY (rounded to 100): near the declared budget when there is one."""
    n = len(size)
    typical = (
        P.BUDGET_MEDIAN_BY_SIZE[size]
        * P.INDUSTRY_AMOUNT_FACTOR[industry]
        * P.PRODUCT_AMOUNT_FACTOR[product]
        * np.exp(rng.normal(0.0, P.AMOUNT_LOG_SD, size=n))
    )
    near_budget = budget * np.exp(rng.normal(0.05, P.AMOUNT_LOG_SD_FROM_BUDGET, size=n))
    amount = np.where(np.nan_to_num(budget) > 0, near_budget, typical)
    return np.maximum(100.0, np.round(amount / 100.0) * 100.0)


def simulate_stages(
    rng: np.random.Generator, rates: np.ndarray, created_s: np.ndarray, cutoff_s: int
) -> tuple[StageRows, np.ndarray, np.ndarray, np.ndarray]:
    """Run each deal's chain from qualification at ``created_s`` until absorbed or the snapshot.

    Returns ``(rows, outcome, closed_s, last_state)``. Sojourns are rounded to whole seconds
    (at least one), so a deal's entries are strictly increasing in time. One vectorised step
    per transition, not per deal.
    """
    n = len(created_s)
    adv, lose, reg = rates[:, 0:4], rates[:, 4:8], rates[:, 8:12]
    state = np.zeros(n, dtype=np.int64)
    t = created_s.copy()
    outcome = np.full(n, OPEN, dtype=np.int8)
    closed = np.full(n, NULL_S, dtype=np.int64)
    parts = [(np.arange(n), state.copy(), t.copy())]
    active = np.arange(n)
    while active.size:
        s = state[active]
        a, lo, r = adv[active, s], lose[active, s], reg[active, s]
        total = a + lo + r
        sojourn = np.maximum(1, np.round(rng.exponential(1.0 / total) * DAY_S)).astype(np.int64)
        pick = rng.random(active.size) * total
        t_next = t[active] + sojourn
        nxt = np.where(pick < a, s + 1, np.where(pick < a + lo, LOST_STATE, s - 1))
        moves = t_next < cutoff_s
        idx, nxt, t_next = active[moves], nxt[moves], t_next[moves]
        parts.append((idx, nxt, t_next))
        state[idx], t[idx] = nxt, t_next
        won, lost = nxt == WON_STATE, nxt == LOST_STATE
        outcome[idx[won]], outcome[idx[lost]] = WON, LOST
        closed[idx[won | lost]] = t_next[won | lost]
        active = idx[nxt < N_OPEN_STAGES]
    rows = StageRows(*(np.concatenate(c) for c in zip(*parts, strict=True)))
    return rows, outcome, closed, state


def draw_deals(
    rngs: dict[str, np.random.Generator], leads: Leads, owners: Owners, cutoff_s: int
) -> Deals:
    """One deal per lead converted before the snapshot, created at its conversion time."""
    converted = np.flatnonzero(leads.converted_s != NULL_S)
    order = np.lexsort((converted, leads.converted_s[converted]))
    lead = converted[order]
    n = len(lead)
    rng = rngs["deals"]
    owner = leads.owner[lead].copy()
    unassigned = owner < 0
    owner[unassigned] = rng.choice(len(owners), size=int(unassigned.sum()), p=owners.share)
    size = leads.latent["company_size"][lead]
    product = conditional(rng, P.PRODUCT_GIVEN_SIZE, size)
    amount = draw_amounts(rng, size, leads.latent["industry"][lead], product, leads.budget[lead])
    recorded = np.where(rng.random(n) < P.AMOUNT_MISSING_P, np.nan, amount)
    competitor = rng.random(n) < P.COMPETITOR_P_BY_SIZE[size]
    eta = rng.normal(0.0, P.DEAL_ETA_SD, size=n)
    intent = leads.intent[lead]
    rates = deal_rates(amount, product, owners.skill[owner], competitor, intent, eta)
    created = leads.converted_s[lead]
    rows, outcome, closed, last_state = simulate_stages(rngs["stages"], rates, created, cutoff_s)
    reason = conditional(rng, P.LOST_REASON_P, competitor.astype(np.int64))
    reason[outcome != LOST] = -1
    if n:
        p_win = deal_win_probability(rates, 0)
        mean_days = deal_mean_time_to_win(rates, 0)
    else:
        p_win = mean_days = np.zeros(0)
    return Deals(
        lead=lead,
        created_s=created,
        owner=owner,
        amount=amount,
        amount_recorded=recorded,
        product=product,
        competitor=competitor,
        intent=intent,
        eta=eta,
        rates=rates,
        p_win=p_win,
        mean_days_to_win=mean_days,
        outcome=outcome,
        closed_s=closed,
        stage_at_cutoff=np.where(outcome == OPEN, last_state, -1),
        lost_reason=reason,
        stages=rows,
    )
