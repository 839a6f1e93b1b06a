"""Sales reports: hand-built histories with known answers, point-in-time invariance, the
grade report on synthetic and generated data, and the model's out-of-sample grade report."""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest

from data_contracts import tables as T
from data_contracts.storage import coerce_frame
from data_contracts.vocabulary import OPEN_STAGES
from models.conversion import ConversionModel, ConversionSettings
from models.conversion_training import ConversionRun, ConversionTrainingSettings, train_and_evaluate
from models.grades import GRADES, grade_array
from models.sales_reports import (
    FUNNEL_STAGES,
    NO_TRAINING_WINDOW,
    NOTE_LABELS,
    SOURCE,
    TOO_FEW_LEADS,
    first_touches,
    grade_report,
    model_grade_report,
    out_of_sample_start,
    owner_report,
    source_report,
    stage_funnel,
    wilson_interval,
)
from models.snapshots import LABEL, SNAPSHOT_INDEX
from pipelines.demo_crm import GeneratedCRM, GeneratorConfig, generate

pytestmark = pytest.mark.unit

T0 = pd.Timestamp("2025-01-01")
Q, NA, P, N = OPEN_STAGES


def at(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


def as_json(report: Any) -> Any:
    """The report's dict through strict JSON (fails on NaN or numpy scalars)."""
    return json.loads(json.dumps(report.to_dict(), allow_nan=False))


# --- hand-built history ------------------------------------------------------------------


def _deals(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(deal_id, lead_id, created day, closed day or None, outcome, amount, owner)."""
    raw = pd.DataFrame(
        [
            (d, lead, at(c), None if x is None else at(x), o, a, w)
            for d, lead, c, x, o, a, w in rows
        ],
        columns=[T.DEAL_ID, T.LEAD_ID, T.CREATED_AT, T.CLOSED_AT, T.OUTCOME, T.AMOUNT, T.OWNER_ID],
    )
    raw[T.CURRENCY] = "CNY"
    return coerce_frame(raw, T.DEALS).frame


def _history(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    raw = pd.DataFrame(
        [(d, s, at(t)) for d, s, t in rows], columns=[T.DEAL_ID, T.STAGE, T.ENTERED_AT]
    )
    return coerce_frame(raw, T.STAGE_HISTORY).frame


def _three_deals() -> tuple[pd.DataFrame, pd.DataFrame]:
    """D1 goes all the way and is won; D2 skips needs analysis and is lost in proposal;
    D3 is still in needs analysis."""
    deals = _deals(
        [
            ("D1", None, 0, 10, "won", 100.0, "U1"),
            ("D2", None, 0, 7, "lost", 50.0, "U1"),
            ("D3", None, 1, None, "open", 70.0, "U2"),
        ]
    )
    history = _history(
        [
            ("D1", Q, 0), ("D1", NA, 2), ("D1", P, 5), ("D1", N, 9), ("D1", "won", 10),
            ("D2", Q, 0), ("D2", P, 4), ("D2", "lost", 7),
            ("D3", Q, 1), ("D3", NA, 4),
        ]
    )  # fmt: skip
    return deals, history


def _stage(funnel: Any, stage: str) -> Any:
    return next(s for s in funnel.stages if s.stage == stage)


def test_stage_funnel__counts_deals_that_reached_at_least_each_stage() -> None:
    deals, history = _three_deals()

    funnel = stage_funnel(deals, history, at(20))

    assert [s.stage for s in funnel.stages] == list(FUNNEL_STAGES)
    # D2 skipped needs analysis but reached proposal, so it reached needs analysis too
    assert [s.reached for s in funnel.stages] == [3, 3, 2, 1, 1]
    assert [s.conversion_to_next for s in funnel.stages] == [1.0, 2 / 3, 0.5, 1.0, None]
    assert [s.won_rate for s in funnel.stages] == [1 / 3, 1 / 3, 0.5, 1.0, 1.0]
    assert [s.closed for s in funnel.stages] == [2, 2, 2, 1, 1]
    assert [s.won_rate_closed for s in funnel.stages] == [0.5, 0.5, 0.5, 1.0, 1.0]
    assert [s.in_stage_now for s in funnel.stages] == [0, 1, 0, 0, None]
    assert (funnel.deals, funnel.won, funnel.lost, funnel.open) == (3, 1, 1, 1)


def test_stage_funnel__median_days_count_completed_stays_and_report_open_ones() -> None:
    deals, history = _three_deals()

    funnel = stage_funnel(deals, history, at(20))

    # qualification: D1 2 d, D2 4 d, D3 3 d; needs analysis: D1 3 d, D3 still there
    # proposal: D1 4 d, D2 3 d (to its loss); negotiation: D1 1 d
    assert [s.median_days for s in funnel.stages] == [3.0, 3.0, 3.5, 1.0, None]
    assert [s.completed_stays for s in funnel.stages] == [3, 1, 2, 1, 0]
    assert [s.open_stays for s in funnel.stages] == [0, 1, 0, 0, 0]


def test_stage_funnel__ends_a_closed_deals_last_stay_at_closed_at_without_a_terminal_row() -> None:
    deals = _deals([("D1", None, 0, 6, "lost", None, None)])
    history = _history([("D1", Q, 0), ("D1", NA, 2)])

    funnel = stage_funnel(deals, history, at(10))

    assert _stage(funnel, NA).median_days == 4.0
    assert _stage(funnel, NA).open_stays == 0


def test_stage_funnel__a_won_deal_without_rows_reached_every_stage_and_a_new_one_the_first() -> (
    None
):
    deals = _deals([("W", None, 0, 5, "won", 1.0, None), ("O", None, 1, None, "open", 1.0, None)])
    history = _history([])

    funnel = stage_funnel(deals, history, at(10))

    assert [s.reached for s in funnel.stages] == [2, 1, 1, 1, 1]
    assert _stage(funnel, Q).in_stage_now == 1


def test_stage_funnel__counts_the_furthest_stage_and_one_stay_per_entry_after_falling_back() -> (
    None
):
    deals = _deals([("D1", None, 0, None, "open", None, None)])
    history = _history([("D1", Q, 0), ("D1", NA, 2), ("D1", Q, 5), ("D1", NA, 6)])

    funnel = stage_funnel(deals, history, at(10))

    assert [s.reached for s in funnel.stages] == [1, 1, 0, 0, 0]
    assert _stage(funnel, Q).completed_stays == 2
    assert _stage(funnel, Q).median_days == 1.5  # stays of 2 d and 1 d
    assert _stage(funnel, NA).median_days == 3.0
    assert _stage(funnel, NA).open_stays == 1
    assert _stage(funnel, NA).in_stage_now == 1


def test_stage_funnel__sees_nothing_stamped_at_or_after_as_of() -> None:
    deals, history = _three_deals()

    # at day 7 D2's loss (stamped at 7) and D1's negotiation have not happened yet
    funnel = stage_funnel(deals, history, at(7))

    assert [s.reached for s in funnel.stages] == [3, 3, 2, 0, 0]
    assert (funnel.won, funnel.lost, funnel.open) == (0, 0, 3)
    assert _stage(funnel, P).open_stays == 2
    assert _stage(funnel, P).median_days is None


def test_stage_funnel__keeps_deals_created_in_the_window() -> None:
    deals, history = _three_deals()

    funnel = stage_funnel(deals, history, at(20), start=at(0.5), end=at(5))

    assert funnel.deals == 1
    assert [s.reached for s in funnel.stages] == [1, 1, 0, 0, 0]


def test_stage_funnel__to_dict_is_strict_json_with_codes_and_nulls() -> None:
    deals, history = _three_deals()

    out = as_json(stage_funnel(deals, history, at(20), start=at(0)))

    assert out["as_of"] == "2025-01-21T00:00:00" and out["end"] is None
    assert out["stages"][4] == {
        "stage": "won", "reached": 1, "conversion_to_next": None, "won_rate": 1.0,
        "closed": 1, "won_rate_closed": 1.0, "in_stage_now": None, "median_days": None,
        "completed_stays": 0, "open_stays": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"as_of": pd.Timestamp("2025-02-01", tz="Asia/Shanghai")}, "time zone"),
        ({"as_of": pd.NaT}, "must be a timestamp"),
        ({"as_of": at(20), "start": at(5), "end": at(5)}, "must end after it starts"),
    ],
)
def test_reports__reject_an_unusable_as_of_or_window(kwargs: dict[str, Any], message: str) -> None:
    deals, history = _three_deals()
    with pytest.raises(ValueError, match=message):
        stage_funnel(deals, history, **kwargs)


# --- lead sources --------------------------------------------------------------------------


def _leads(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(lead_id, created day, source, owner, converted day or None)."""
    raw = pd.DataFrame(
        [(i, at(c), s, o, None if x is None else at(x)) for i, c, s, o, x in rows],
        columns=[T.LEAD_ID, T.CREATED_AT, SOURCE, T.OWNER_ID, T.CONVERTED_AT],
    )
    return coerce_frame(raw, T.LEADS).frame


def _source_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    leads = _leads(
        [
            ("L1", 0, "website", "U1", 2),
            ("L2", 1, "website", "U1", None),
            ("L3", 1, "referral", "U2", 25),  # converts after as_of
            ("L4", 2, None, None, 3),
            ("L5", 3, "referral", "U2", None),
            ("L6", 30, "website", "U1", None),  # created after as_of
        ]
    )
    deals = _deals(
        [
            ("D1", "L1", 2, 10, "won", 100.0, "U1"),
            ("D2", "L1", 4, 12, "won", None, "U1"),  # won without an amount
            ("D3", "L4", 3, 15, "lost", 40.0, "U2"),
            ("D4", "L3", 25, 27, "won", 500.0, "U2"),  # all after as_of
            ("D5", None, 1, 5, "won", 900.0, "U2"),  # no lead: not in the source report
        ]
    )
    return leads, deals


def test_source_report__counts_leads_conversions_and_won_revenue_per_source() -> None:
    leads, deals = _source_case()

    report = source_report(leads, deals, at(20))

    out = as_json(report)
    assert [s["source"] for s in out["sources"]] == ["website", "referral", None]
    website, referral, missing = out["sources"]
    assert website == {
        "source": "website", "leads": 2, "converted": 1, "conversion_rate": 0.5, "deals": 2,
        "won_deals": 2, "won_revenue": 100.0, "average_won_deal": 100.0,
        "won_deals_without_amount": 1,
    }  # fmt: skip
    assert (referral["leads"], referral["converted"], referral["deals"]) == (2, 0, 0)
    assert referral["average_won_deal"] is None
    assert (missing["leads"], missing["converted"], missing["deals"]) == (1, 1, 1)
    assert missing["won_deals"] == 0
    assert out["total"]["leads"] == 5 and out["total"]["won_revenue"] == 100.0
    assert out["currency"] == "CNY"


def test_source_report__window_selects_leads_by_creation_and_their_deals_follow() -> None:
    leads, deals = _source_case()

    report = source_report(leads, deals, at(20), start=at(0.5), end=at(2.5))

    assert report.total.leads == 3  # L2, L3, L4
    assert report.total.deals == 1  # D3 of L4; D1/D2 belong to L1 outside the window


def test_source_report__refuses_to_add_amounts_of_different_currencies() -> None:
    leads, deals = _source_case()
    deals[T.CURRENCY] = deals[T.CURRENCY].mask(deals[T.DEAL_ID] == "D2", "USD")

    with pytest.raises(ValueError, match=r"more than one currency.*CNY.*USD|USD.*CNY"):
        source_report(leads, deals, at(20))
    # a lost deal in another currency adds no revenue, so it is no conflict
    deals[T.CURRENCY] = deals[T.CURRENCY].mask(deals[T.DEAL_ID] == "D3", "USD")
    deals[T.CURRENCY] = deals[T.CURRENCY].mask(deals[T.DEAL_ID] == "D2", "CNY")
    assert source_report(leads, deals, at(20)).currency == "CNY"


# --- owners --------------------------------------------------------------------------------


def _activities(rows: list[tuple[str | None, str | None, float, str]]) -> pd.DataFrame:
    """(lead_id, deal_id, occurred day, activity type)."""
    raw = pd.DataFrame(
        [(f"A{i}", lead, deal, at(t), kind) for i, (lead, deal, t, kind) in enumerate(rows)],
        columns=[T.ACTIVITY_ID, T.LEAD_ID, T.DEAL_ID, T.OCCURRED_AT, T.ACTIVITY_TYPE],
    )
    raw[T.NEW_EXPECTED_CLOSE_DATE] = [
        at(60).normalize() if k == "close_date_changed" else None for k in raw[T.ACTIVITY_TYPE]
    ]
    return coerce_frame(raw, T.ACTIVITIES).frame


HOUR = 1 / 24


def _owner_case() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    leads, deals = _source_case()
    activities = _activities(
        [
            ("L1", None, 0, "form_submit"),  # the form that created L1: not a follow-up
            ("L1", None, 5 * HOUR, "call"),
            ("L1", None, 1, "email_sent"),
            ("L1", "D1", 3, "meeting"),  # deal-phase work on L1 still touches L1
            ("L2", None, 1 + 30 * HOUR, "email_sent"),
            ("L3", None, 5, "close_date_changed"),  # bookkeeping, not a touch
            ("L5", None, 21, "call"),  # after as_of
        ]
    )
    return leads, deals, activities


def test_first_touches__measures_hours_from_creation_to_the_first_real_touch() -> None:
    leads, _, activities = _owner_case()

    hours, counts = first_touches(leads[T.LEAD_ID], leads[T.CREATED_AT], activities, at(20))

    assert hours[0] == pytest.approx(5.0)
    assert hours[1] == pytest.approx(30.0)
    assert np.isnan(hours[2:]).all()
    assert counts.tolist() == [3, 1, 0, 0, 0, 0]


def test_owner_report__summarises_follow_up_conversion_cycle_and_revenue_per_owner() -> None:
    leads, deals, activities = _owner_case()

    out = as_json(owner_report(leads, deals, activities, at(20)))

    assert [o["owner_id"] for o in out["owners"]] == ["U1", "U2", None]
    u1, u2, nobody = out["owners"]
    assert u1 == {
        "owner_id": "U1", "leads": 2, "touched_leads": 2, "median_hours_to_first_touch": 17.5,
        "untouched_share": 0.0, "touches_per_lead": 2.0, "converted": 1,
        "conversion_rate": 0.5, "deals": 2, "won_deals": 2, "median_sales_cycle_days": 8.0,
        "won_revenue": 100.0, "won_deals_without_amount": 1,
    }  # fmt: skip
    # U2: L3 and L5 untouched before as_of; D3 lost, D5 (no lead) won 900 in 4 days
    assert (u2["leads"], u2["touched_leads"], u2["untouched_share"]) == (2, 0, 1.0)
    assert u2["median_hours_to_first_touch"] is None
    assert (u2["deals"], u2["won_deals"], u2["won_revenue"]) == (2, 1, 900.0)
    assert u2["median_sales_cycle_days"] == 4.0
    assert (nobody["leads"], nobody["deals"], nobody["conversion_rate"]) == (1, 0, 1.0)
    assert "close_date_changed" not in out["touch_types"]


def test_owner_report__counts_only_the_touch_types_it_is_given() -> None:
    leads, deals, activities = _owner_case()

    report = owner_report(leads, deals, activities, at(20), touch_types=("email_sent",))

    u1 = report.owners[0]
    assert u1.median_hours_to_first_touch == pytest.approx((24.0 + 30.0) / 2)
    assert u1.touches_per_lead == 1.0


def test_owner_report__a_lead_never_touched_is_untouched_even_with_bookkeeping_rows() -> None:
    leads, deals, activities = _owner_case()

    report = owner_report(leads, deals, activities, at(20), start=at(1), end=at(2))

    u2 = next(o for o in report.owners if o.owner_id == "U2")
    assert (u2.leads, u2.touched_leads, u2.touches_per_lead) == (1, 0, 0.0)


# --- grades --------------------------------------------------------------------------------


def test_wilson_interval__matches_the_textbook_values() -> None:
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    low, high = wilson_interval(0, 20)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.1611, abs=1e-4)
    assert wilson_interval(0, 0) == (None, None)


def test_grade_report__recovers_known_conversion_rates_and_proves_the_order() -> None:
    # given 2,000 leads per grade converting at 0.6 / 0.4 / 0.2 / 0.05
    rng = np.random.default_rng(0)
    true_rates = {"A": 0.6, "B": 0.4, "C": 0.2, "D": 0.05}
    grades = np.repeat(list(true_rates), 2_000)
    outcomes = (rng.random(grades.size) < np.repeat(list(true_rates.values()), 2_000)).astype(int)
    shuffle = rng.permutation(grades.size)

    report = grade_report(grades[shuffle], outcomes[shuffle])

    assert [g.grade for g in report.grades] == list(GRADES)
    for row in report.grades:
        assert row.count == 2_000 and row.share == 0.25
        assert row.conversion_rate == pytest.approx(true_rates[row.grade], abs=0.03)
        assert row.ci_low is not None and row.ci_high is not None
        assert row.ci_low < true_rates[row.grade] < row.ci_high
    assert report.monotone is True and report.intervals_separated is True
    assert report.n == 8_000


def test_grade_report__flags_a_reversed_pair_and_skips_empty_grades() -> None:
    # B converts better than A; no C leads
    grades = ["A"] * 10 + ["B"] * 10 + ["D"] * 10
    outcomes = [1] * 3 + [0] * 7 + [1] * 6 + [0] * 4 + [0] * 10

    report = grade_report(grades, outcomes, probabilities=np.full(30, 0.5))

    c = report.grades[2]
    assert (c.count, c.share, c.conversion_rate, c.ci_low, c.mean_probability) == (
        0, 0.0, None, None, None,
    )  # fmt: skip
    assert report.monotone is False and report.intervals_separated is False
    assert report.grades[0].mean_probability == 0.5
    assert as_json(report)["grades"][2]["conversion_rate"] is None


def test_grade_report__needs_two_graded_groups_to_speak_of_order() -> None:
    report = grade_report(["B", "B"], [1, 0])
    assert report.monotone is None and report.intervals_separated is None
    empty = grade_report([], [])
    assert empty.n == 0 and empty.conversion_rate is None and empty.grades[0].share is None


@pytest.mark.parametrize(
    ("grades", "outcomes", "message"),
    [
        (["A", "E"], [1, 0], "grade 'E' at position 1"),
        (["A", None], [1, 0], "grade None at position 1"),
        (["A", "B"], [1, 2], "outcome 2 at position 1"),
        (["A", "B"], [1, np.nan], "at position 1 is not 0 or 1"),
        (["A"], [1, 0], "differ in length"),
    ],
)
def test_grade_report__names_the_first_bad_entry(
    grades: list[Any], outcomes: list[Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        grade_report(grades, outcomes)


# --- the model's grades out of sample (cheap paths) ----------------------------------------


def _stub_model(meta: dict[str, Any]) -> ConversionModel:
    return cast(ConversionModel, SimpleNamespace(meta=meta))


WINDOWS = {
    "validation_end": "2025-01-01 00:00:00",
    "test_start": "2025-04-01 00:00:00",
}


def test_out_of_sample_start__is_after_the_last_label_the_model_was_fitted_on() -> None:
    assert out_of_sample_start({"windows": WINDOWS}) == pd.Timestamp("2025-04-01")
    # a shorter purge gap cannot move the bound before validation_end + 90 days
    short_gap = {**WINDOWS, "test_start": "2025-02-01 00:00:00"}
    assert out_of_sample_start({"windows": short_gap}) == pd.Timestamp("2025-04-01")
    assert out_of_sample_start({}) is None


def test_model_grade_report__says_so_when_too_few_leads_are_out_of_sample() -> None:
    leads, _ = _source_case()
    tables = {"leads": leads, "activities": _activities([])}

    report = model_grade_report(_stub_model({"windows": WINDOWS}), tables, at(20))

    assert report.note == TOO_FEW_LEADS and report.grades is None
    assert report.n_leads == 0
    assert as_json(report)["note"] == TOO_FEW_LEADS
    assert all(en and zh for en, zh in NOTE_LABELS.values())


def test_model_grade_report__refuses_a_model_that_does_not_say_when_its_data_ended() -> None:
    leads, _ = _source_case()
    tables = {"leads": leads, "activities": _activities([])}

    report = model_grade_report(_stub_model({}), tables, at(20))

    assert report.note == NO_TRAINING_WINDOW and report.grades is None


# --- generated data ------------------------------------------------------------------------

END = pd.Timestamp("2026-11-01")  # the day after the generator's end date
MID = pd.Timestamp("2025-09-15")


@pytest.fixture(scope="module")
def crm() -> GeneratedCRM:
    return generate(GeneratorConfig(leads=8_000, seed=3, end_date=date(2026, 10, 31)))


def as_recorded_at(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, Any]:
    """What the CRM held at ``as_of``: later rows gone, later closes and conversions undone."""
    leads = tables["leads"]
    leads = leads[leads[T.CREATED_AT] < as_of].copy()
    for column in (T.CONVERTED_AT, T.DISQUALIFIED_AT):
        leads[column] = leads[column].where(leads[column] < as_of)
    deals = tables["deals"]
    deals = deals[deals[T.CREATED_AT] < as_of].copy()
    later = ~(deals[T.CLOSED_AT] < as_of)
    deals[T.CLOSED_AT] = deals[T.CLOSED_AT].where(~later)
    deals[T.OUTCOME] = deals[T.OUTCOME].mask(later, "open")
    history = tables["stage_history"]
    activities = tables["activities"]
    return {
        "leads": leads,
        "deals": deals,
        "stage_history": history[history[T.ENTERED_AT] < as_of],
        "activities": activities[activities[T.OCCURRED_AT] < as_of],
    }


def test_reports__on_the_full_history_equal_the_reports_on_what_the_crm_held_at_as_of(
    crm: GeneratedCRM,
) -> None:
    full, past = crm.tables, as_recorded_at(crm.tables, MID)
    window = {"start": pd.Timestamp("2025-03-01"), "end": pd.Timestamp("2025-08-01")}

    for kwargs in ({}, window):
        assert as_json(stage_funnel(full["deals"], full["stage_history"], MID, **kwargs)) == (
            as_json(stage_funnel(past["deals"], past["stage_history"], MID, **kwargs))
        )
        assert as_json(source_report(full["leads"], full["deals"], MID, **kwargs)) == as_json(
            source_report(past["leads"], past["deals"], MID, **kwargs)
        )
        now = owner_report(full["leads"], full["deals"], full["activities"], MID, **kwargs)
        then = owner_report(past["leads"], past["deals"], past["activities"], MID, **kwargs)
        assert as_json(now) == as_json(then)
    # and the future does change the reports (the comparison above is not vacuous)
    assert as_json(stage_funnel(full["deals"], full["stage_history"], END)) != as_json(
        stage_funnel(past["deals"], past["stage_history"], END)
    )


def test_reports__on_generated_data_are_internally_consistent(crm: GeneratedCRM) -> None:
    t = crm.tables
    created = int((t["leads"][T.CREATED_AT] < END).sum())

    funnel = stage_funnel(t["deals"], t["stage_history"], END)
    sources = source_report(t["leads"], t["deals"], END)
    owners = owner_report(t["leads"], t["deals"], t["activities"], END)

    reached = [s.reached for s in funnel.stages]
    assert reached == sorted(reached, reverse=True) and reached[0] == len(t["deals"])
    assert reached[-1] == funnel.won == int((t["deals"][T.OUTCOME] == "won").sum())
    for stage in funnel.stages[:-1]:
        assert stage.median_days is not None and stage.median_days > 0
        assert 0.0 < (stage.conversion_to_next or 0.0) < 1.0
    assert sum(s.in_stage_now or 0 for s in funnel.stages) == funnel.open
    assert sources.total.leads == created == sum(o.leads for o in owners.owners)
    assert sources.total.won_deals == funnel.won
    assert sum(s.outcomes.won_revenue for s in sources.sources) == pytest.approx(
        sources.total.won_revenue
    )
    assert sum(o.won_revenue for o in owners.owners) == pytest.approx(sources.total.won_revenue)
    for owner in owners.owners:
        hours = owner.median_hours_to_first_touch
        assert hours is None or hours > 0.0


def test_grade_report__on_generated_truth_grades_a_converts_far_more_than_d(
    crm: GeneratedCRM,
) -> None:
    # the generator's own 90-day probabilities at creation, graded (the oracle's grades)
    leads = crm.tables["leads"].merge(crm.truth["leads"], on=T.LEAD_ID)
    matured = leads[leads[T.CREATED_AT] + pd.Timedelta(days=90) <= END]
    outcome = (matured[T.CONVERTED_AT] - matured[T.CREATED_AT]) < pd.Timedelta(days=90)

    report = grade_report(grade_array(matured["p_convert_90d"]), outcome.astype(int))

    a, d = report.grades[0], report.grades[3]
    assert a.count > 0 and a.ci_low is not None and d.ci_high is not None
    assert a.ci_low > d.ci_high


# --- the model's grades out of sample (trained model) ---------------------------------------


@pytest.fixture(scope="module")
def trained(crm: GeneratedCRM) -> ConversionRun:
    settings = ConversionTrainingSettings(
        model=ConversionSettings(
            max_rounds=300, learning_rate=0.1, early_stopping_rounds=30, num_threads=1
        )
    )
    custom = list(crm.manifest.contract()["leads"].custom_columns)
    return train_and_evaluate(crm.tables, custom=custom, settings=settings, data_end=END)


def test_model_grade_report__grades_exactly_the_training_runs_unseen_creation_snapshots(
    crm: GeneratedCRM, trained: ConversionRun
) -> None:
    assert trained.model is not None and trained.test_frame is not None

    report = model_grade_report(trained.model, crm.tables, END)

    # the training run's own test rows at creation are the same leads, scored the same way
    test = trained.test_frame
    at_creation = (test[SNAPSHOT_INDEX] == 0).to_numpy()
    expected_grades = grade_array(trained.test_probabilities["model"][at_creation])
    assert report.note is None and report.grades is not None
    assert report.n_leads == int(at_creation.sum()) > 200
    assert report.scored_from == trained.windows.test_start
    counts = {g.grade: g.count for g in report.grades.grades}
    assert counts == {g: int((expected_grades == g).sum()) for g in GRADES}
    assert report.grades.converted == int(test.loc[at_creation, LABEL].sum())
    # sanity: the best-graded leads convert more than the D leads
    graded = [g for g in report.grades.grades if g.count >= 10]
    assert graded[0].grade != "D" and graded[-1].grade == "D"
    assert (graded[0].conversion_rate or 0.0) > (graded[-1].conversion_rate or 1.0)
    assert as_json(report)["grades"]["n"] == report.n_leads


def test_model_grade_report__ignores_rows_stamped_after_as_of(
    crm: GeneratedCRM, trained: ConversionRun
) -> None:
    assert trained.model is not None
    as_of = END - pd.Timedelta(days=30)

    now = model_grade_report(trained.model, crm.tables, as_of)
    then = model_grade_report(trained.model, as_recorded_at(crm.tables, as_of), as_of)

    assert now.grades is not None and now.n_leads >= 200
    assert as_json(now) == as_json(then)
