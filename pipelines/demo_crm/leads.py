"""Leads: attributes at creation, missing values, and the conversion law they are drawn from.

The conversion law is chosen so that its creation-time probability is exact
(``data_contracts.truth``): conversion depends only on the *observed* attributes (a missing
answer is its own level), the rep's skill, the lead's hidden intent ``u`` and its month's
shock ``z``; the time to convert depends only on the observed timeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import expit

from data_contracts.truth import conversion_time_cdf, lead_convert_probability
from pipelines.demo_crm import parameters as P
from pipelines.demo_crm.calendar import Window, creation_times, month_of
from pipelines.demo_crm.frames import NULL_S
from pipelines.demo_crm.names import contact_names, job_titles
from pipelines.demo_crm.owners import Owners, assign_leads
from pipelines.demo_crm.sampling import DAY_S, categorical, conditional

#: categorical lead fields and their codes, in the order they are drawn
CATEGORIES: dict[str, tuple[str, ...]] = {
    "source": P.SOURCE_CODES,
    "company_size": P.SIZE_CODES,
    "industry": P.INDUSTRY_CODES,
    "region": P.REGION_CODES,
    "seniority": P.SENIORITY_CODES,
    "authority": P.AUTHORITY_CODES,
    "need": P.NEED_CODES,
    "timeline": P.TIMELINE_CODES,
    "erp_system": P.ERP_CODES,
}
_EFFECTS: dict[str, dict[str, float]] = {
    "source": P.EFFECT_SOURCE,
    "company_size": P.EFFECT_SIZE,
    "industry": P.EFFECT_INDUSTRY,
    "region": P.EFFECT_REGION,
    "seniority": P.EFFECT_SENIORITY,
    "authority": P.EFFECT_AUTHORITY,
    "need": P.EFFECT_NEED,
    "timeline": P.EFFECT_TIMELINE,
    "erp_system": P.EFFECT_ERP,
}


@dataclass(frozen=True)
class Leads:
    """All leads, in creation order. Codes index :data:`CATEGORIES` (-1 = missing)."""

    created_s: np.ndarray
    month: np.ndarray
    observed: dict[str, np.ndarray]
    latent: dict[str, np.ndarray]
    budget: np.ndarray  # as declared; NaN when not answered
    job_title: pa.Array
    name: pa.Array
    owner: np.ndarray  # owner index, -1 unassigned
    logit_obs: np.ndarray
    intent: np.ndarray  # u, hidden
    gamma_scale: np.ndarray  # days
    time_to_convert_days: np.ndarray  # drawn for every lead; used where it converts
    converts: np.ndarray  # converts eventually (possibly after the snapshot)
    converted_s: np.ndarray  # NULL_S when not converted by the snapshot
    disqualified_s: np.ndarray

    def __len__(self) -> int:
        return len(self.created_s)


def _level_values(field: str) -> np.ndarray:
    """Effect per code, with the missing level last (so code -1 indexes it)."""
    levels = (*CATEGORIES[field], P.MISSING_LEVEL)
    return P.by_code(levels, _EFFECTS[field])


def draw_attributes(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """True attributes (no missing values) and declared budgets (CNY, ≥ 0, rounded)."""
    a: dict[str, np.ndarray] = {}
    a["source"] = categorical(rng, P.SOURCE_P, n)
    a["company_size"] = conditional(rng, P.SIZE_GIVEN_SOURCE, a["source"])
    a["industry"] = conditional(rng, P.INDUSTRY_GIVEN_SIZE, a["company_size"])
    a["region"] = conditional(rng, P.REGION_GIVEN_SOURCE, a["source"])
    a["seniority"] = conditional(rng, P.SENIORITY_GIVEN_SIZE, a["company_size"])
    a["authority"] = conditional(rng, P.AUTHORITY_GIVEN_SENIORITY, a["seniority"])
    a["need"] = conditional(rng, P.NEED_GIVEN_SOURCE, a["source"])
    a["timeline"] = conditional(rng, P.TIMELINE_GIVEN_NEED, a["need"])
    a["erp_system"] = conditional(rng, P.ERP_GIVEN_SIZE, a["company_size"])
    high_need = a["need"] == P.NEED_CODES.index("high")
    median = P.BUDGET_MEDIAN_BY_SIZE[a["company_size"]] * np.where(
        high_need, P.BUDGET_HIGH_NEED_FACTOR, 1.0
    )
    raw = median * np.exp(rng.normal(0.0, P.BUDGET_LOG_SD, size=n))
    step = np.where(raw < 100_000, 1_000.0, 10_000.0)
    budget = np.maximum(step, np.round(raw / step) * step)
    budget[rng.random(n) < P.BUDGET_ZERO_P[a["need"]]] = 0.0
    return a, budget


def _source_factor(source_obs: np.ndarray, factors: dict[str | None, float]) -> np.ndarray:
    table = np.array([factors.get(c, 1.0) for c in P.SOURCE_CODES] + [factors.get(None, 1.0)])
    return table[source_obs]


def apply_missingness(
    rng: np.random.Generator, latent: dict[str, np.ndarray], budget: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Blank out answers at realistic rates: ``(observed codes, declared budget, title_missing)``.

    Whether a field is missing depends only on observed fields (the source, and whether the
    seniority was recorded), never on the hidden intent.
    """
    n = len(budget)
    observed = {k: v.copy() for k, v in latent.items()}
    observed["source"][rng.random(n) < P.MISSING_BASE["source"]] = -1
    source_obs = observed["source"]
    bant = _source_factor(source_obs, P.MISSING_SOURCE_FACTOR_BANT)
    senior = _source_factor(source_obs, P.MISSING_SOURCE_FACTOR_SENIORITY)
    budget_obs = budget.copy()
    for field in CATEGORIES:
        if field == "source":
            continue
        factor = bant if field in P.BANT_FIELDS else senior if field == "seniority" else 1.0
        p = np.minimum(0.9, P.MISSING_BASE[field] * factor)
        observed[field][rng.random(n) < p] = -1
    budget_obs[rng.random(n) < np.minimum(0.9, P.MISSING_BASE["budget"] * bant)] = np.nan
    p_if_recorded, p_if_missing = P.JOB_TITLE_MISSING_GIVEN_SENIORITY
    p_title = np.where(observed["seniority"] < 0, p_if_missing, p_if_recorded)
    return observed, budget_obs, rng.random(n) < p_title


def conversion_logit(
    observed: dict[str, np.ndarray], budget: np.ndarray, owner_effect: np.ndarray
) -> np.ndarray:
    """``logit_obs``: the conversion logit set by what is observed at creation.

    ``observed`` codes (-1 missing) per :data:`CATEGORIES` field, ``budget`` as declared
    (NaN missing), ``owner_effect`` the owning rep's skill (or the unassigned effect).
    """
    logit = np.full(len(budget), P.INTERCEPT) + owner_effect
    for field in CATEGORIES:
        logit += _level_values(field)[observed[field]]
    with np.errstate(divide="ignore"):
        log_ratio = np.clip(np.log(budget / P.BUDGET_PIVOT), -3.0, 3.0)
    budget_term = np.where(
        np.isnan(budget),
        P.BUDGET_MISSING_EFFECT,
        np.where(budget > 0, P.BUDGET_SLOPE * log_ratio, P.BUDGET_ZERO_EFFECT),
    )
    return logit + budget_term


def gamma_scale(timeline_obs: np.ndarray) -> np.ndarray:
    """Scale (days) of the Gamma time to convert, set by the declared timeline."""
    means = [P.MEAN_DAYS_TO_CONVERT[c] for c in P.TIMELINE_CODES]
    means.append(P.MEAN_DAYS_TO_CONVERT[P.MISSING_LEVEL])
    return np.array(means)[timeline_obs] / P.GAMMA_SHAPE


def latent_law(shock_sd: float) -> tuple[float, float]:
    """Mean and sd of the hidden logit term ``u + z`` for a lead that exists.

    ``u ~ N(0, INTENT_SD²)``; ``z`` is its month's shock, ``N(0, shock_sd²)`` a priori but
    ``N(shock_sd², shock_sd²)`` given that the lead was created, because a month's volume is
    multiplied by ``exp(z)`` (exponential tilting of a normal).
    """
    return shock_sd**2, float(np.sqrt(P.INTENT_SD**2 + shock_sd**2))


def _blank(values: pa.Array, missing: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.large_string()), values)


def draw_leads(
    rngs: dict[str, np.random.Generator],
    window: Window,
    shocks: np.ndarray,
    owners: Owners,
    n: int,
) -> Leads:
    """Draw ``n`` leads over ``window``; ``rngs`` holds one generator per component."""
    created = creation_times(rngs["arrival"], window, shocks, n)
    month = month_of(window, created)
    latent, declared = draw_attributes(rngs["attributes"], n)
    observed, budget, title_missing = apply_missingness(rngs["missing"], latent, declared)
    rng_text = rngs["text"]
    title = _blank(job_titles(rng_text, latent["seniority"]), title_missing)
    english = latent["region"] == P.REGION_CODES.index("international")
    name = _blank(contact_names(rng_text, english), rng_text.random(n) < P.MISSING_BASE["name"])
    owner = assign_leads(rngs["owners"], owners, n)
    owner_effect = np.where(owner >= 0, owners.skill[np.maximum(owner, 0)], P.UNASSIGNED_EFFECT)
    logit_obs = conversion_logit(observed, budget, owner_effect)
    scale = gamma_scale(observed["timeline"])

    rng = rngs["conversion"]
    intent = rng.normal(0.0, P.INTENT_SD, size=n)
    converts = rng.random(n) < expit(logit_obs + intent + shocks[month])
    t_convert = rng.gamma(P.GAMMA_SHAPE, scale)
    disqualify = ~converts & (rng.random(n) < P.DISQUALIFY_P)
    t_disq = rng.exponential(P.DISQUALIFY_MEAN_DAYS, size=n)
    converted_s = created + np.round(t_convert * DAY_S).astype(np.int64)
    converted_s[~converts | (converted_s >= window.cutoff_s)] = NULL_S
    disqualified_s = created + np.round(t_disq * DAY_S).astype(np.int64)
    disqualified_s[~disqualify | (disqualified_s >= window.cutoff_s)] = NULL_S
    return Leads(
        created_s=created,
        month=month,
        observed=observed,
        latent=latent,
        budget=budget,
        job_title=title,
        name=name,
        owner=owner,
        logit_obs=logit_obs,
        intent=intent,
        gamma_scale=scale,
        time_to_convert_days=t_convert,
        converts=converts,
        converted_s=converted_s,
        disqualified_s=disqualified_s,
    )


def convert_probabilities(
    leads: Leads, shock_sd: float, days: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each lead's exact creation-time ``(P(converts within days), P(converts ever))``."""
    mean, sd = latent_law(shock_sd)
    p_ever = lead_convert_probability(
        leads.logit_obs, sd, P.GAMMA_SHAPE, leads.gamma_scale, np.inf, mean=mean
    )
    return p_ever * conversion_time_cdf(days, P.GAMMA_SHAPE, leads.gamma_scale), p_ever
