"""The constants of the generative model: the demo CRM's "world".

Probability tables are given per code so they read like a spec; :func:`by_code` turns them
into arrays in vocabulary order. Effects are on the conversion logit unless said otherwise.
Rates are per day. Amounts and budgets are in CNY.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np

from data_contracts.vocabulary import (
    AUTHORITIES,
    COMPANY_SIZES,
    INDUSTRIES,
    NEEDS,
    SENIORITIES,
    SOURCES,
    TIMELINES,
    codes,
)


def by_code(vocab: Sequence[str], values: Mapping[str, float]) -> np.ndarray:
    """``values`` as an array in ``vocab`` order; every code must be given exactly once."""
    missing = [c for c in vocab if c not in values]
    extra = [c for c in values if c not in vocab]
    if missing or extra:
        raise ValueError(f"parameter table: missing codes {missing}, unknown codes {extra}")
    return np.array([values[c] for c in vocab], dtype=float)


def prob_rows(
    parent: Sequence[str], child: Sequence[str], rows: Mapping[str, Sequence[float]]
) -> np.ndarray:
    """A conditional table P(child | parent) as an array ``(len(parent), len(child))``.

    Rows are normalised; a parent code without a row takes the ``"default"`` row.
    """
    out = np.array([rows.get(p, rows["default"]) for p in parent], dtype=float)
    if out.shape[1] != len(child):
        raise ValueError(f"conditional table rows need {len(child)} entries")
    return out / out.sum(axis=1, keepdims=True)


SOURCE_CODES: Final = codes(SOURCES)
INDUSTRY_CODES: Final = codes(INDUSTRIES)
SIZE_CODES: Final = codes(COMPANY_SIZES)
SENIORITY_CODES: Final = codes(SENIORITIES)
AUTHORITY_CODES: Final = codes(AUTHORITIES)
NEED_CODES: Final = codes(NEEDS)
TIMELINE_CODES: Final = codes(TIMELINES)
REGION_CODES: Final = (
    "east_china",
    "south_china",
    "north_china",
    "central_china",
    "southwest_china",
    "northeast_china",
    "northwest_china",
    "international",
)
ERP_CODES: Final = ("none", "kingdee", "yonyou", "sap", "oracle", "other")
PRODUCT_CODES: Final = (
    "crm_standard",
    "crm_enterprise",
    "analytics_addon",
    "implementation_service",
)
LOST_REASON_CODES: Final = ("price", "competitor", "no_budget", "no_decision", "timing")
CURRENCY: Final = "CNY"

# --- lead volume -----------------------------------------------------------------------------
ANNUAL_GROWTH: Final = 1.25
MONTH_FACTOR: Final = np.array(
    [0.95, 1.0, 1.05, 1.0, 1.0, 1.0, 0.97, 0.92, 1.05, 1.0, 1.12, 1.2]
)  # Jan..Dec before holidays; Q4 peak
WEEKDAY_FACTOR: Final = np.array([1.05, 1.05, 1.0, 1.0, 0.95, 0.25, 0.18])  # Mon..Sun
#: Spring Festival (Chinese New Year) dates; other years fall back to 5 February.
SPRING_FESTIVAL: Final[dict[int, str]] = {
    2010: "2010-02-14", 2011: "2011-02-03", 2012: "2012-01-23", 2013: "2013-02-10",
    2014: "2014-01-31", 2015: "2015-02-19", 2016: "2016-02-08", 2017: "2017-01-28",
    2018: "2018-02-16", 2019: "2019-02-05", 2020: "2020-01-25", 2021: "2021-02-12",
    2022: "2022-02-01", 2023: "2023-01-22", 2024: "2024-02-10", 2025: "2025-01-29",
    2026: "2026-02-17", 2027: "2027-02-06", 2028: "2028-01-26", 2029: "2029-02-13",
    2030: "2030-02-03", 2031: "2031-01-23", 2032: "2032-02-11", 2033: "2033-01-31",
    2034: "2034-02-19", 2035: "2035-02-08",
}  # fmt: skip
#: (first day offset, last day offset, factor) around the Spring Festival
SPRING_FESTIVAL_DIP: Final = ((-10, -4, 0.7), (-3, 7, 0.25), (8, 14, 0.75))
GOLDEN_WEEK_FACTOR: Final = 0.3  # 1–7 October
LABOUR_DAY_FACTOR: Final = 0.5  # 1–5 May
#: relative weight of each hour of the day (local working hours; stored as naive UTC)
HOUR_WEIGHTS: Final = np.array(
    [0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.2, 0.4, 1.0, 2.6, 3.0, 2.8,
     1.4, 2.0, 2.8, 2.9, 2.7, 2.2, 1.2, 0.8, 0.7, 0.6, 0.4, 0.2]
)  # fmt: skip

# --- owners ----------------------------------------------------------------------------------
LEADS_PER_REP: Final = 2000
MIN_REPS, MAX_REPS = 8, 150
SKILL_SD: Final = 0.4
OPTIMISM_RANGE: Final = (0.5, 0.9)
MOVE_CLOSE_DATE_RANGE: Final = (0.35, 0.95)
UNASSIGNED_SHARE: Final = 0.01
UNASSIGNED_EFFECT: Final = -0.3

# --- lead attributes -------------------------------------------------------------------------
SOURCE_P: Final = by_code(
    SOURCE_CODES,
    {
        "website": 0.28, "wechat": 0.22, "trade_show": 0.11, "phone": 0.12,
        "third_party_platform": 0.14, "referral": 0.08, "email": 0.015, "social": 0.01,
        "paid_search": 0.01, "organic_search": 0.01, "other": 0.005,
    },
)  # fmt: skip
SIZE_GIVEN_SOURCE: Final = prob_rows(
    SOURCE_CODES,
    SIZE_CODES,
    {
        "default": (0.25, 0.32, 0.24, 0.13, 0.06),
        "website": (0.24, 0.33, 0.25, 0.13, 0.05),
        "wechat": (0.40, 0.34, 0.17, 0.07, 0.02),
        "trade_show": (0.08, 0.20, 0.32, 0.25, 0.15),
        "phone": (0.30, 0.35, 0.22, 0.10, 0.03),
        "third_party_platform": (0.33, 0.35, 0.21, 0.08, 0.03),
        "referral": (0.15, 0.28, 0.29, 0.18, 0.10),
    },
)
INDUSTRY_GIVEN_SIZE: Final = prob_rows(
    SIZE_CODES,
    INDUSTRY_CODES,
    {
        "default": (0.22, 0.14, 0.15, 0.07, 0.07, 0.06, 0.08, 0.07, 0.07, 0.07),
        "size_1_10": (0.15, 0.20, 0.17, 0.06, 0.08, 0.03, 0.07, 0.06, 0.10, 0.08),
        "size_201_1000": (0.30, 0.10, 0.14, 0.08, 0.06, 0.09, 0.09, 0.08, 0.03, 0.03),
        "size_1000_plus": (0.33, 0.08, 0.14, 0.09, 0.05, 0.12, 0.08, 0.08, 0.01, 0.02),
    },
)
REGION_GIVEN_SOURCE: Final = prob_rows(
    SOURCE_CODES,
    REGION_CODES,
    {
        "default": (0.31, 0.20, 0.16, 0.10, 0.08, 0.045, 0.035, 0.07),
        "trade_show": (0.27, 0.18, 0.14, 0.09, 0.07, 0.04, 0.03, 0.16),
        "wechat": (0.32, 0.21, 0.17, 0.11, 0.09, 0.05, 0.04, 0.01),
    },
)
SENIORITY_GIVEN_SIZE: Final = prob_rows(
    SIZE_CODES,
    SENIORITY_CODES,
    {
        "default": (0.07, 0.08, 0.22, 0.35, 0.28),
        "size_1_10": (0.35, 0.05, 0.10, 0.25, 0.25),
        "size_11_50": (0.18, 0.08, 0.17, 0.32, 0.25),
        "size_201_1000": (0.03, 0.06, 0.22, 0.37, 0.32),
        "size_1000_plus": (0.02, 0.04, 0.20, 0.38, 0.36),
    },
)
AUTHORITY_GIVEN_SENIORITY: Final = prob_rows(
    SENIORITY_CODES,
    AUTHORITY_CODES,
    {
        "default": (0.15, 0.55, 0.30),
        "c_level": (0.80, 0.17, 0.03),
        "vp": (0.60, 0.35, 0.05),
        "director": (0.35, 0.52, 0.13),
        "individual_contributor": (0.04, 0.36, 0.60),
    },
)
NEED_GIVEN_SOURCE: Final = prob_rows(
    SOURCE_CODES,
    NEED_CODES,
    {
        "default": (0.28, 0.45, 0.27),
        "referral": (0.40, 0.42, 0.18),
        "trade_show": (0.30, 0.45, 0.25),
        "third_party_platform": (0.22, 0.45, 0.33),
        "wechat": (0.25, 0.45, 0.30),
    },
)
TIMELINE_GIVEN_NEED: Final = prob_rows(
    NEED_CODES,
    TIMELINE_CODES,
    {
        "default": (0.12, 0.33, 0.30, 0.25),
        "high": (0.30, 0.38, 0.20, 0.12),
        "low": (0.05, 0.17, 0.30, 0.48),
    },
)
ERP_GIVEN_SIZE: Final = prob_rows(
    SIZE_CODES,
    ERP_CODES,
    {
        "default": (0.22, 0.30, 0.26, 0.09, 0.05, 0.08),
        "size_1_10": (0.62, 0.20, 0.08, 0.01, 0.01, 0.08),
        "size_11_50": (0.42, 0.28, 0.16, 0.03, 0.02, 0.09),
        "size_201_1000": (0.10, 0.22, 0.30, 0.20, 0.10, 0.08),
        "size_1000_plus": (0.05, 0.10, 0.25, 0.35, 0.18, 0.07),
    },
)
BUDGET_MEDIAN_BY_SIZE: Final = by_code(
    SIZE_CODES,
    {
        "size_1_10": 20_000, "size_11_50": 50_000, "size_51_200": 120_000,
        "size_201_1000": 300_000, "size_1000_plus": 800_000,
    },
)  # fmt: skip
BUDGET_LOG_SD: Final = 0.7
BUDGET_HIGH_NEED_FACTOR: Final = 1.2
BUDGET_ZERO_P: Final = by_code(NEED_CODES, {"high": 0.02, "medium": 0.04, "low": 0.08})

# --- missing values: P(missing) by field, times a factor set by the observed source ----------
MISSING_BASE: Final[dict[str, float]] = {
    "source": 0.02,
    "industry": 0.05,
    "region": 0.03,
    "company_size": 0.06,
    "seniority": 0.09,
    "budget": 0.22,
    "authority": 0.13,
    "need": 0.10,
    "timeline": 0.18,
    "erp_system": 0.25,
    "name": 0.01,
}
#: fields whose missingness the source drives (BANT answers and the contact's title)
BANT_FIELDS: Final = ("budget", "authority", "need", "timeline")
MISSING_SOURCE_FACTOR_BANT: Final = {
    "phone": 1.6, "wechat": 1.3, "third_party_platform": 1.2, "trade_show": 0.7,
    "referral": 0.6, None: 1.3,
}  # fmt: skip
MISSING_SOURCE_FACTOR_SENIORITY: Final = {"wechat": 1.5, "phone": 1.2, None: 1.3}
JOB_TITLE_MISSING_GIVEN_SENIORITY: Final = (0.05, 0.6)  # (seniority observed, missing)

# --- conversion ------------------------------------------------------------------------------
INTERCEPT: Final = -2.0
MISSING_LEVEL: Final = "<missing>"
EFFECT_SOURCE: Final = {
    "website": 0.0, "wechat": -0.2, "trade_show": 0.3, "phone": -0.3,
    "third_party_platform": -0.5, "referral": 0.9, "email": -0.4, "social": -0.5,
    "paid_search": -0.1, "organic_search": 0.1, "other": -0.3, MISSING_LEVEL: -0.2,
}  # fmt: skip
EFFECT_INDUSTRY: Final = {
    "manufacturing": 0.2, "retail": -0.1, "technology": 0.3, "healthcare": 0.0,
    "education": -0.3, "finance": 0.2, "logistics": 0.1, "construction": -0.2,
    "hospitality": -0.3, "other": -0.2, MISSING_LEVEL: -0.1,
}  # fmt: skip
EFFECT_REGION: Final = {
    "east_china": 0.15, "south_china": 0.1, "north_china": 0.05, "central_china": -0.05,
    "southwest_china": -0.1, "northeast_china": -0.2, "northwest_china": -0.25,
    "international": -0.4, MISSING_LEVEL: -0.1,
}  # fmt: skip
EFFECT_SIZE: Final = {
    "size_1_10": -0.5, "size_11_50": -0.15, "size_51_200": 0.15, "size_201_1000": 0.3,
    "size_1000_plus": 0.2, MISSING_LEVEL: -0.2,
}  # fmt: skip
EFFECT_SENIORITY: Final = {
    "c_level": 0.3, "vp": 0.3, "director": 0.25, "manager": 0.0,
    "individual_contributor": -0.35, MISSING_LEVEL: -0.1,
}  # fmt: skip
EFFECT_AUTHORITY: Final = {
    "decision_maker": 0.5,
    "influencer": 0.1,
    "end_user": -0.4,
    MISSING_LEVEL: -0.2,
}
EFFECT_NEED: Final = {"high": 0.8, "medium": 0.0, "low": -0.9, MISSING_LEVEL: -0.3}
EFFECT_TIMELINE: Final = {
    "within_1_month": 0.6, "within_3_months": 0.3, "within_6_months": -0.1,
    "over_6_months": -0.6, MISSING_LEVEL: -0.3,
}  # fmt: skip
EFFECT_ERP: Final = {
    "none": -0.2, "kingdee": 0.1, "yonyou": 0.15, "sap": 0.35, "oracle": 0.25,
    "other": 0.0, MISSING_LEVEL: 0.0,
}  # fmt: skip
BUDGET_SLOPE: Final = 0.3  # per unit of log(budget / BUDGET_PIVOT), clipped to ±3
BUDGET_PIVOT: Final = 100_000.0
BUDGET_ZERO_EFFECT: Final = -0.6
BUDGET_MISSING_EFFECT: Final = -0.3
INTENT_SD: Final = 1.0

GAMMA_SHAPE: Final = 2.0
MEAN_DAYS_TO_CONVERT: Final = {
    "within_1_month": 20.0, "within_3_months": 45.0, "within_6_months": 90.0,
    "over_6_months": 150.0, MISSING_LEVEL: 60.0,
}  # fmt: skip
DISQUALIFY_P: Final = 0.6
DISQUALIFY_MEAN_DAYS: Final = 45.0

# --- deals -----------------------------------------------------------------------------------
BASE_ADVANCE: Final = np.array([1 / 25, 1 / 33, 1 / 29, 1 / 22])
BASE_LOSE: Final = np.array([1 / 82, 1 / 100, 1 / 82, 1 / 64])
BASE_REGRESS: Final = np.array([0.0, 0.0, 1 / 220, 1 / 165])
DEAL_INTENT_COEF: Final = 0.3
DEAL_ETA_SD: Final = 0.25
DEAL_SKILL_COEF: Final = 0.5
COMPETITOR_LOSE_EFFECT: Final = 0.6
AMOUNT_ADVANCE_SLOPE: Final = -0.12  # per unit of log(amount / AMOUNT_PIVOT)
AMOUNT_LOSE_SLOPE: Final = 0.05
AMOUNT_PIVOT: Final = 100_000.0
PRODUCT_ADVANCE_EFFECT: Final = np.array([0.1, -0.2, 0.15, 0.0])
PRODUCT_LOSE_EFFECT: Final = np.array([0.0, -0.1, 0.1, 0.0])
PRODUCT_GIVEN_SIZE: Final = prob_rows(
    SIZE_CODES,
    PRODUCT_CODES,
    {
        "default": (0.45, 0.25, 0.18, 0.12),
        "size_1_10": (0.70, 0.03, 0.20, 0.07),
        "size_11_50": (0.60, 0.10, 0.20, 0.10),
        "size_201_1000": (0.25, 0.45, 0.15, 0.15),
        "size_1000_plus": (0.10, 0.60, 0.12, 0.18),
    },
)
PRODUCT_AMOUNT_FACTOR: Final = np.array([1.0, 1.8, 0.5, 0.8])
INDUSTRY_AMOUNT_FACTOR: Final = by_code(
    INDUSTRY_CODES,
    {
        "manufacturing": 1.2, "retail": 0.8, "technology": 1.1, "healthcare": 1.2,
        "education": 0.7, "finance": 1.5, "logistics": 1.0, "construction": 1.0,
        "hospitality": 0.7, "other": 0.9,
    },
)  # fmt: skip
AMOUNT_LOG_SD_FROM_BUDGET: Final = 0.3
AMOUNT_LOG_SD: Final = 0.6
AMOUNT_MISSING_P: Final = 0.03
COMPETITOR_P_BY_SIZE: Final = np.array([0.15, 0.22, 0.30, 0.38, 0.45])
LOST_REASON_P: Final = np.array(
    [
        [0.32, 0.08, 0.20, 0.25, 0.15],  # no competitor involved
        [0.25, 0.45, 0.10, 0.12, 0.08],  # competitor involved
    ]
)
EXPECTED_CLOSE_NOISE_SD: Final = 0.2  # relative to the deal's mean time to win
SLIP_NOTICE_MEAN_DAYS: Final = 3.0  # delay between the date passing and the rep moving it
SLIP_EXTENSION_MIN_DAYS: Final = 7.0
SLIP_EXTENSION_MEAN_DAYS: Final = 21.0
MAX_SLIP_ROUNDS: Final = 12

# --- activities ------------------------------------------------------------------------------
ENGAGEMENT_COEF: Final = 0.8
ENGAGEMENT_REF: Final = -2.0  # intent (logit_obs + u) at which the multiplier is 1
ENGAGEMENT_BOUNDS: Final = (0.15, 6.0)
LEAD_TOUCH_RATE: Final = 0.12  # touches per day at creation, multiplier 1
LEAD_TOUCH_DECAY_DAYS: Final = 30.0
#: lead-phase touch types: (base weight, intent slope)
LEAD_TOUCH_TYPES: Final[dict[str, tuple[float, float]]] = {
    "email_sent": (0.06, 0.0),
    "email_open": (0.28, -0.3),
    "email_click": (0.08, 0.2),
    "web_visit": (0.25, -0.2),
    "form_submit": (0.05, 0.6),
    "wechat_message": (0.10, 0.2),
    "call": (0.12, 0.4),
    "meeting": (0.04, 0.8),
    "demo": (0.02, 0.9),
}
#: sources whose leads arrive through a form (a form_submit at creation)
FORM_SOURCES: Final = ("website", "third_party_platform", "paid_search", "organic_search")
BURST_MEAN: Final = 2.5  # calls/meetings/demos shortly before conversion
BURST_WINDOW_DAYS: Final = 21.0
BURST_TYPES: Final = (("call", 0.5), ("meeting", 0.3), ("demo", 0.2))
#: deal-phase touches per day at stage entry, by open stage (rows) and type
DEAL_TOUCH_TYPES: Final = ("call", "meeting", "wechat_message", "email_sent", "demo")
DEAL_TOUCH_RATES: Final = np.array(
    [
        [0.12, 0.03, 0.15, 0.10, 0.01],
        [0.10, 0.06, 0.12, 0.08, 0.05],
        [0.10, 0.05, 0.12, 0.10, 0.03],
        [0.14, 0.08, 0.15, 0.06, 0.00],
    ]
)
DEAL_TOUCH_DECAY_DAYS: Final = 21.0
DEAL_TOUCH_INTENT_COEF: Final = 0.5  # on (0.3·u + eta)
QUOTE_DELAY_MEAN_DAYS: Final = 1.0
