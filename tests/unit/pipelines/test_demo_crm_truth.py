"""The truth the generator writes is the law its outcomes were drawn from; the data look real."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from data_contracts import truth as T
from pipelines.demo_crm import GeneratorConfig, generate
from pipelines.demo_crm.calendar import day_weights, make_window

pytestmark = pytest.mark.unit

END = date(2026, 10, 31)
SNAPSHOT = pd.Timestamp(END) + pd.Timedelta(days=1)
HORIZON = pd.Timedelta(days=90)


@pytest.fixture(scope="module")
def crm():
    return generate(GeneratorConfig(leads=100_000, seed=7, end_date=END))


@pytest.fixture(scope="module")
def labelled(crm):
    """Leads old enough for a known 90-day label, with truth and the realised month shock."""
    leads = crm.tables["leads"]
    truth = crm.truth["leads"]
    months = crm.truth["months"].set_index(T.MONTH_START)[T.SHOCK_Z]
    frame = pd.DataFrame(
        {
            "month": leads["created_at"].dt.to_period("M").dt.start_time.astype("datetime64[us]"),
            "label": ((leads["converted_at"] - leads["created_at"]) <= HORIZON).to_numpy(
                dtype=bool, na_value=False
            ),
            "p": truth[T.P_CONVERT_90D].to_numpy(),
            "logit_obs": truth[T.LOGIT_OBS].to_numpy(),
            "scale": truth[T.GAMMA_SCALE].to_numpy(),
            "shape": truth[T.GAMMA_SHAPE].to_numpy(),
        }
    )
    frame["z"] = months.reindex(frame["month"]).to_numpy()
    # the law given the realised shock: only the lead's intent u ~ N(0, 1) left to average
    frame["p_given_z"] = T.lead_convert_probability(
        frame["logit_obs"] + frame["z"], 1.0, frame["shape"], frame["scale"], 90.0
    )
    return frame[(leads["created_at"] <= SNAPSHOT - HORIZON).to_numpy()]


@pytest.mark.slow
def test_lead_truth__matches_observed_conversion_given_the_realised_shocks(labelled):
    observed, expected = labelled["label"].sum(), labelled["p_given_z"].sum()
    se = np.sqrt((labelled["p_given_z"] * (1 - labelled["p_given_z"])).sum())
    assert abs(observed - expected) < 3 * se


@pytest.mark.slow
def test_lead_truth__matches_observed_conversion_within_month_clustered_error(labelled):
    residual = labelled["label"] - labelled["p"]
    per_month = residual.groupby(labelled["month"]).sum()
    se = np.sqrt((per_month**2).sum())
    assert abs(residual.sum()) < 3 * se
    assert abs(labelled["label"].mean() - labelled["p"].mean()) < 0.005


@pytest.mark.slow
def test_lead_truth__is_calibrated_by_decile(labelled):
    decile = pd.qcut(labelled["p_given_z"], 10, labels=False)
    groups = labelled.groupby(decile)
    observed, expected = groups["label"].mean(), groups["p_given_z"].mean()
    n = groups.size()
    se = np.sqrt(expected * (1 - expected) / n)
    assert ((observed - expected).abs() < 3.5 * se + 1e-3).all(), pd.DataFrame(
        {"observed": observed, "expected": expected}
    )
    assert observed.is_monotonic_increasing


@pytest.mark.slow
def test_lead_truth__gives_a_useful_but_imperfect_oracle(labelled):
    auc = roc_auc_score(labelled["label"], labelled["p"])
    assert 0.75 <= auc <= 0.85
    assert 0.10 <= labelled["label"].mean() <= 0.15


@pytest.mark.slow
def test_deal_truth__predicts_how_many_deals_are_won_and_lost_by_the_snapshot(crm):
    deals, truth = crm.tables["deals"], crm.truth["deals"]
    rates = truth[list(T.DEAL_RATE_COLUMNS)].to_numpy()
    t_days = (SNAPSHOT - deals["created_at"]).dt.total_seconds().to_numpy() / 86_400
    p_won, p_lost = T.deal_outcome_cdf(rates, 0, t_days)
    for outcome, p in (("won", p_won), ("lost", p_lost)):
        observed = (deals["outcome"] == outcome).sum()
        assert abs(observed - p.sum()) < 3 * np.sqrt((p * (1 - p)).sum()), outcome


@pytest.mark.slow
def test_deal_truth__win_probability_at_creation_matches_old_deals_win_rate(crm):
    deals, truth = crm.tables["deals"], crm.truth["deals"]
    old = (deals["created_at"] < SNAPSHOT - pd.Timedelta(days=400)).to_numpy()
    won = (deals["outcome"] == "won").to_numpy()[old]
    still_open = (deals["outcome"] == "open").to_numpy()[old].mean()
    p = truth[T.P_WIN_AT_CREATION].to_numpy()[old]
    assert still_open < 0.01
    assert abs(won.mean() - p.mean()) < 3 * np.sqrt((p * (1 - p)).sum()) / len(p) + still_open
    assert 0.35 <= truth[T.P_WIN_AT_CREATION].mean() <= 0.45


@pytest.mark.slow
def test_generate__funnel_and_engagement_rates_are_in_the_intended_ranges(crm):
    leads, deals = crm.tables["leads"], crm.tables["deals"]
    acts, stages = crm.tables["activities"], crm.tables["stage_history"]
    assert 5 <= len(acts) / len(leads) <= 8
    won = deals[deals["outcome"] == "won"]
    cycle_days = (won["closed_at"] - won["created_at"]).dt.total_seconds() / 86_400
    assert 40 <= cycle_days.median() <= 90
    regressions = stages.assign(order=stages["stage"].map(
        {"qualification": 0, "needs_analysis": 1, "proposal": 2, "negotiation": 3}
    )).groupby("deal_id")["order"].diff()  # fmt: skip
    assert (regressions < 0).sum() > 50
    lost_reasons = deals["lost_reason"].value_counts(normalize=True)
    assert set(lost_reasons.index) == {"price", "competitor", "no_budget", "no_decision", "timing"}
    assert 0.01 <= deals["amount"].isna().mean() <= 0.05
    assert (deals["currency"] == "CNY").all()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("column", "low", "high"),
    [
        ("budget", 0.20, 0.32),
        ("timeline", 0.15, 0.26),
        ("authority", 0.11, 0.20),
        ("seniority", 0.07, 0.14),
        ("job_title", 0.07, 0.14),
        ("industry", 0.03, 0.07),
        ("region", 0.02, 0.05),
        ("source", 0.01, 0.03),
    ],
)
def test_generate__leaves_realistic_shares_of_answers_missing(crm, column, low, high):
    assert low <= crm.tables["leads"][column].isna().mean() <= high


@pytest.mark.slow
def test_generate__missing_answers_depend_on_the_observed_source(crm):
    leads = crm.tables["leads"]
    missing_budget = leads["budget"].isna().groupby(leads["source"]).mean()
    assert missing_budget["phone"] > 1.5 * missing_budget["referral"]


@pytest.mark.slow
def test_generate__attributes_correlate_like_real_leads(crm):
    leads = crm.tables["leads"]
    large = leads["company_size"].isin(["size_201_1000", "size_1000_plus"])
    by_source = large.groupby(leads["source"]).mean()
    assert by_source["trade_show"] > 2 * by_source["wechat"]
    deciders = (leads["authority"] == "decision_maker").groupby(leads["seniority"]).mean()
    assert deciders["c_level"] > 3 * deciders["individual_contributor"]
    intl = leads["region"] == "international"
    assert leads.loc[intl, "name"].dropna().str.contains(r"[A-Za-z]").all()
    assert leads["job_title"].str.contains(r"[\u4e00-\u9fff]").mean() > 0.3


@pytest.mark.slow
def test_generate__names_carry_no_signal_about_conversion(crm, labelled):
    leads = crm.tables["leads"].loc[labelled.index]
    surname = leads["name"].str[0]
    keep = surname.notna() & surname.str.contains(r"[\u4e00-\u9fff]")
    table = pd.crosstab(surname[keep], labelled.loc[keep, "label"])
    assert stats.chi2_contingency(table).pvalue > 0.001


@pytest.mark.slow
def test_generate__engagement_follows_intent(crm, labelled):
    acts = crm.tables["activities"]
    lead_acts = acts[acts["deal_id"].isna()]
    leads = crm.tables["leads"].loc[labelled.index, ["lead_id", "created_at"]]
    first_week = lead_acts.merge(leads, on="lead_id")
    first_week = first_week[
        first_week["occurred_at"] < first_week["created_at"] + pd.Timedelta(days=7)
    ]
    counts = first_week.groupby("lead_id").size().reindex(leads["lead_id"], fill_value=0)
    rho = stats.spearmanr(counts.to_numpy(), labelled["p"].to_numpy()).statistic
    assert rho > 0.2
    hot = first_week["activity_type"].isin(["meeting", "demo", "form_submit", "call"])
    converted = first_week["lead_id"].isin(leads["lead_id"][labelled["label"].to_numpy()])
    assert hot[converted].mean() > hot[~converted].mean() + 0.05


def _dispersion(crm) -> float:
    """Chi-square-like dispersion of monthly lead counts around the no-shock expectation."""
    window = make_window(END, crm.config.years)
    weights = pd.Series(day_weights(window)).groupby(window.day_month).sum().to_numpy()
    expected = len(crm.tables["leads"]) * weights / weights.sum()
    counts = crm.truth["months"][T.LEAD_COUNT].to_numpy(dtype=float)
    return float(((counts - expected) ** 2 / expected).sum() / len(counts))


def test_generate__shared_shock_makes_monthly_volumes_vary_more():
    calm = generate(GeneratorConfig(leads=30_000, seed=2, end_date=END, shock_sd=0.0))
    shaky = generate(GeneratorConfig(leads=30_000, seed=2, end_date=END, shock_sd=0.3))
    assert _dispersion(calm) < 2.0  # multinomial noise only: about 1
    assert _dispersion(shaky) > 10 * _dispersion(calm)
    assert (calm.truth["months"][T.SHOCK_Z] == 0).all()
    months = shaky.truth["months"]
    assert months[T.LEAD_COUNT].sum() == 30_000
    created = shaky.tables["leads"]["created_at"].dt.to_period("M").value_counts().sort_index()
    assert (created.to_numpy() == months[T.LEAD_COUNT].to_numpy()).all()


def test_generate__volume_has_weekly_and_spring_festival_seasonality():
    crm = generate(GeneratorConfig(leads=30_000, seed=4, end_date=END, shock_sd=0.0))
    created = crm.tables["leads"]["created_at"]
    assert (created.dt.day_of_week >= 5).mean() < 0.12
    assert ((created.dt.hour >= 8) & (created.dt.hour < 19)).mean() > 0.8
    per_day = created.dt.normalize().value_counts()
    festival = pd.Timestamp("2026-02-17")
    dip = per_day.reindex(pd.date_range(festival, periods=7), fill_value=0).mean()
    before = per_day.reindex(pd.date_range(festival - pd.Timedelta(days=40), periods=21)).mean()
    assert dip < 0.4 * before
