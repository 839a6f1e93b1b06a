"""Point-in-time deal features: values on hand-made histories, and no leakage."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from data_contracts import tables as T
from data_contracts.spec import Column, ColumnType
from data_contracts.storage import coerce_frame
from data_contracts.tables import ACTIVITIES, DEALS, LEADS, STAGE_HISTORY
from features.deal_features import (
    AS_OF,
    LEAD_CATEGORICAL,
    LEAD_ENGAGEMENT,
    OwnerDealHistory,
    build_close_time_features,
    build_deal_features,
    close_time_feature_encoder,
    deal_feature_encoder,
    lead_context_features,
    lead_custom_feature,
)
from models.bant import total_points
from models.close_time import open_deals_at
from models.deal_snapshots import DealSnapshotSettings, open_deal_snapshots
from pipelines.demo_crm import GeneratedCRM, GeneratorConfig, generate

pytestmark = pytest.mark.unit

CUSTOM = (Column("seats", ColumnType.INTEGER), Column("segment", ColumnType.STRING))
LEAD_CUSTOM = (Column("erp", ColumnType.STRING), Column("employees", ColumnType.INTEGER))


def _deals() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "deal_id": ["D1", "D2", "D3"],
            "lead_id": ["L1", "L2", "L9"],  # L9 is not in the leads table
            "created_at": ["2026-01-01", "2026-01-05", "2026-01-10"],
            "owner_id": ["U1", "U1", "U2"],
            "amount": ["1000", "", "50"],
            "currency": ["CNY", "CNY", "CNY"],
            "product": ["crm", None, "erp"],
            "expected_close_date": ["2026-03-01", "2026-02-01", ""],
            "closed_at": ["2026-04-10", "2026-02-20", "2026-03-01"],
            "outcome": ["won", "lost", "won"],
            "seats": ["12", "", "3"],
            "segment": ["smb", "mid", None],
        }
    )
    return coerce_frame(raw, DEALS.with_custom_fields(list(CUSTOM))).frame


def _stages() -> pd.DataFrame:
    rows = [
        ("D1", "qualification", "2026-01-01"),
        ("D1", "needs_analysis", "2026-01-10"),
        ("D1", "proposal", "2026-01-20"),
        ("D1", "needs_analysis", "2026-02-01"),  # regression
        ("D1", "negotiation", "2026-02-10"),
        ("D1", "qualification", "2026-02-15"),  # regression
        ("D1", "won", "2026-04-10"),
        ("D2", "qualification", "2026-01-05"),
        ("D2", "lost", "2026-02-20"),
        ("D3", "qualification", "2026-01-10"),
        ("D3", "proposal", "2026-01-15"),
        ("D3", "won", "2026-03-01"),
    ]
    raw = pd.DataFrame(rows, columns=["deal_id", "stage", "entered_at"])
    return coerce_frame(raw, STAGE_HISTORY).frame


def _activities() -> pd.DataFrame:
    rows = [
        ("A1", None, "D1", "2026-01-02", "call", ""),
        ("A2", None, "D1", "2026-01-25", "meeting", ""),
        ("A3", None, "D1", "2026-02-05", "email_sent", ""),
        ("A4", None, "D1", "2026-02-10", "close_date_changed", "2026-03-15"),  # +14 d
        ("A5", None, "D1", "2026-02-12", "close_date_changed", "2026-03-10"),  # pulled in
        ("A6", None, "D1", "2026-02-20", "close_date_changed", "2026-04-01"),  # +22 d
        ("A7", "L1", None, "2026-02-08", "call", ""),  # a lead touch, not on a deal
    ]
    cols = [
        "activity_id",
        "lead_id",
        "deal_id",
        "occurred_at",
        "activity_type",
        "new_expected_close_date",
    ]
    return coerce_frame(pd.DataFrame(rows, columns=cols), ACTIVITIES).frame


def _snapshots(deals: pd.DataFrame, as_of: str) -> pd.DataFrame:
    return deals.assign(**{AS_OF: pd.Timestamp(as_of)})


def _features(as_of: str) -> pd.DataFrame:
    deals = _deals()
    return build_deal_features(
        _snapshots(deals, as_of),
        _stages(),
        _activities(),
        OwnerDealHistory.from_deals(deals),
        CUSTOM,
    )


def test_features__describe_stage_position_before_as_of() -> None:
    d1 = _features("2026-02-14").iloc[0]
    assert d1["current_stage"] == "negotiation"
    assert d1["days_in_stage"] == pytest.approx(4.0)
    assert [d1["reached_needs_analysis"], d1["reached_proposal"], d1["reached_negotiation"]] == [
        1.0,
        1.0,
        1.0,
    ]
    assert d1["n_stage_regressions"] == 1
    assert d1["deal_age_days"] == pytest.approx(44.0)


def test_features__count_every_entry_to_a_lower_stage_as_a_regression() -> None:
    feats = _features("2026-03-05")
    assert list(feats["n_stage_regressions"]) == [2, 0, 0]
    assert feats.iloc[0]["current_stage"] == "qualification"
    assert feats.iloc[0]["reached_negotiation"] == 1.0  # reached once, kept after regressing


def test_features__flag_stages_reached_even_when_skipped() -> None:
    d3 = _features("2026-02-01").iloc[2]  # qualification -> proposal, skipping needs analysis
    assert d3["current_stage"] == "proposal"
    assert d3["reached_needs_analysis"] == 1.0
    assert d3["reached_proposal"] == 1.0
    assert d3["reached_negotiation"] == 0.0


def test_features__leave_stage_empty_before_the_first_entry() -> None:
    d3 = _features("2026-01-09").iloc[2]
    assert d3["current_stage"] is None
    assert np.isnan(d3["days_in_stage"])
    assert d3["reached_needs_analysis"] == 0.0


def test_features__carry_amount_product_and_custom_fields() -> None:
    feats = _features("2026-02-14")
    assert feats["amount"].iloc[0] == 1000.0
    assert feats["log_amount"].iloc[0] == pytest.approx(np.log1p(1000.0))
    assert np.isnan(feats["amount"].iloc[1]) and np.isnan(feats["log_amount"].iloc[1])
    assert list(feats["product"]) == ["crm", None, "erp"]
    assert feats["seats"].iloc[0] == 12.0 and np.isnan(feats["seats"].iloc[1])
    assert list(feats["segment"]) == ["smb", "mid", None]


def test_features__count_only_deal_touches_inside_each_window_before_as_of() -> None:
    d1 = _features("2026-02-14").iloc[0]
    # touches are 43, 20 and 9 days old; close-date changes and lead touches do not count
    assert d1["n_deal_touches_7d"] == 0
    assert d1["n_deal_touches_30d"] == 2
    assert d1["n_deal_touches_90d"] == 3
    assert d1["n_deal_touches_total"] == 3
    assert d1["days_since_last_deal_touch"] == pytest.approx(9.0)
    d2 = _features("2026-02-14").iloc[1]
    assert d2["n_deal_touches_total"] == 0 and np.isnan(d2["days_since_last_deal_touch"])


def test_features__use_the_latest_close_date_change_and_count_only_forward_slips() -> None:
    d1 = _features("2026-02-14").iloc[0]
    assert d1["days_to_expected_close"] == pytest.approx(24.0)  # Mar 10, set on Feb 12
    assert d1["n_close_date_slips"] == 1  # +14 d, then pulled in
    assert d1["days_slipped_total"] == pytest.approx(14.0)
    assert d1["expected_close_passed"] == 0.0
    later = _features("2026-03-05").iloc[0]
    assert later["n_close_date_slips"] == 2
    assert later["days_slipped_total"] == pytest.approx(36.0)
    assert later["days_to_expected_close"] == pytest.approx(27.0)  # Apr 1


def test_features__fall_back_to_the_first_entered_close_date() -> None:
    feats = _features("2026-03-05")
    assert feats.iloc[1]["days_to_expected_close"] == pytest.approx(-32.0)
    assert feats.iloc[1]["expected_close_passed"] == 1.0
    assert np.isnan(feats.iloc[2]["days_to_expected_close"])
    assert np.isnan(feats.iloc[2]["expected_close_passed"])


def test_features__ignore_entries_exactly_at_as_of() -> None:
    d1 = _features("2026-02-10").iloc[0]  # negotiation and a close-date change both at as_of
    assert d1["current_stage"] == "needs_analysis"
    assert d1["reached_negotiation"] == 0.0
    assert d1["n_close_date_slips"] == 0
    assert d1["days_to_expected_close"] == pytest.approx(19.0)  # still the first-entered Mar 1


def test_features__give_the_owner_record_of_deals_closed_before_as_of() -> None:
    feats = _features("2026-03-05")
    # closed before Mar 5: D2 lost (U1) on Feb 20, D3 won (U2) on Mar 1; pooled rate 1/2
    assert list(feats["owner_closed_deals"]) == [1.0, 1.0, 1.0]
    assert feats.iloc[0]["owner_win_rate"] == pytest.approx((0 + 20 * 0.5) / (1 + 20))
    assert feats.iloc[2]["owner_win_rate"] == pytest.approx((1 + 20 * 0.5) / (1 + 20))
    assert np.isnan(feats.iloc[0]["owner_won_cycle_days"])
    assert feats.iloc[2]["owner_won_cycle_days"] == pytest.approx(50.0)
    early = _features("2026-02-14")
    assert list(early["owner_closed_deals"]) == [0.0, 0.0, 0.0]
    assert early["owner_win_rate"].isna().all()


def test_features__do_not_change_when_rows_at_or_after_as_of_are_added() -> None:
    deals = _deals()
    as_of = "2026-02-14"
    before = _features(as_of)
    stages = pd.concat(
        [
            _stages(),
            coerce_frame(
                pd.DataFrame(
                    {
                        "deal_id": ["D1", "D2", "D3"],
                        "stage": ["lost", "proposal", "negotiation"],
                        "entered_at": ["2026-02-14", "2026-02-14T00:00:01", "2026-05-01"],
                    }
                ),
                STAGE_HISTORY,
            ).frame,
        ],
        ignore_index=True,
    )
    acts = pd.concat(
        [
            _activities(),
            coerce_frame(
                pd.DataFrame(
                    {
                        "activity_id": ["F1", "F2", "F3"],
                        "deal_id": ["D1", "D2", "D1"],
                        "occurred_at": ["2026-02-14", "2026-02-15", "2026-02-14"],
                        "activity_type": ["meeting", "call", "close_date_changed"],
                        "new_expected_close_date": ["", "", "2026-12-31"],
                    }
                ),
                ACTIVITIES,
            ).frame,
        ],
        ignore_index=True,
    )
    closed_now = coerce_frame(
        pd.DataFrame(
            {
                "deal_id": ["D8", "D9"],
                "created_at": ["2026-01-01", "2026-01-01"],
                "owner_id": ["U1", "U2"],
                "currency": ["CNY", "CNY"],
                "closed_at": ["2026-02-14", "2026-03-01"],
                "outcome": ["won", "lost"],
            }
        ),
        DEALS,
    ).frame
    history = OwnerDealHistory.from_deals(pd.concat([deals, closed_now], ignore_index=True))
    after = build_deal_features(_snapshots(deals, as_of), stages, acts, history, CUSTOM)
    pd.testing.assert_frame_equal(before, after)


def test_features__never_read_the_outcome_columns_of_snapshots() -> None:
    deals = _deals()
    snaps = _snapshots(deals, "2026-03-05")
    history = OwnerDealHistory.from_deals(deals)
    full = build_deal_features(snaps, _stages(), _activities(), history, CUSTOM)
    blind = build_deal_features(
        snaps.drop(columns=["closed_at", "outcome", "lost_reason"]),
        _stages(),
        _activities(),
        history,
        CUSTOM,
    )
    pd.testing.assert_frame_equal(full, blind)


def test_features__align_repeated_snapshots_with_the_index_and_the_encoder() -> None:
    deals = _deals()
    snaps = pd.concat(
        [_snapshots(deals, "2026-03-05"), _snapshots(deals, "2026-02-14")], ignore_index=True
    )
    snaps.index = pd.Index([f"s{i}" for i in range(len(snaps))])
    feats = build_deal_features(
        snaps, _stages(), _activities(), OwnerDealHistory.from_deals(deals), CUSTOM
    )
    encoder = deal_feature_encoder(CUSTOM)
    assert list(feats.columns) == encoder.feature_names
    assert feats.index.equals(snaps.index)
    assert all(feats[c].dtype == np.float64 for c in encoder.numeric)
    assert all(feats[c].dtype == object for c in encoder.categorical)
    assert feats.loc["s0", "n_stage_regressions"] == 2
    assert feats.loc["s3", "n_stage_regressions"] == 1
    assert feats.loc["s3", "current_stage"] == "negotiation"


def test_owner_deal_history__aggregate_answers_like_the_full_history_after_its_date() -> None:
    deals = _deals()
    history = OwnerDealHistory.from_deals(deals)
    frozen = OwnerDealHistory.from_dict(history.aggregate(pd.Timestamp("2026-06-01")).to_dict())
    owners = pd.Series(["U1", "U2", "nobody", None])
    at_cut = np.array(["2026-06-01"] * 4, dtype="datetime64[us]")  # the end of the data
    for full, agg in zip(history.query(owners, at_cut), frozen.query(owners, at_cut), strict=True):
        np.testing.assert_allclose(full, agg)
    when = np.array(["2026-07-01"] * 4, dtype="datetime64[us]")
    for full, agg in zip(history.query(owners, when), frozen.query(owners, when), strict=True):
        np.testing.assert_allclose(full, agg)
    n, rate, cycle = frozen.query(owners, when)
    assert list(n) == [2.0, 1.0, 0.0, 0.0]
    assert cycle[0] == pytest.approx(99.0)  # D1: Jan 1 -> Apr 10
    assert rate[2] == pytest.approx(2 / 3)  # an unknown owner gets the pooled rate


# -- the newer deal features: pace through the stages and the work on the deal ---------------


def test_features__count_touches_since_the_current_stage_was_entered() -> None:
    d1 = _features("2026-02-06").iloc[0]  # in needs analysis again since Feb 1
    # touches on Jan 2, Jan 25 (both before the stage entry) and Feb 5
    assert d1["n_deal_touches_total"] == 3
    assert d1["n_deal_touches_in_stage"] == 1
    assert d1["days_in_stage"] == pytest.approx(5.0)
    assert d1["deal_touch_rate_in_stage"] == pytest.approx(1 / 5)
    assert d1["deal_age_days"] == pytest.approx(36.0)
    assert d1["deal_touch_rate"] == pytest.approx(3 / 36)


def test_features__count_a_touch_at_the_stage_entry_as_inside_the_stage() -> None:
    deals = _deals()
    at_entry = coerce_frame(
        pd.DataFrame(
            {
                "activity_id": ["E1"],
                "deal_id": ["D1"],
                "occurred_at": ["2026-02-01"],
                "activity_type": ["call"],
            }
        ),
        ACTIVITIES,
    ).frame
    feats = build_deal_features(
        _snapshots(deals, "2026-02-06"),
        _stages(),
        pd.concat([_activities(), at_entry], ignore_index=True),
        OwnerDealHistory.from_deals(deals),
        CUSTOM,
    )
    assert feats.iloc[0]["n_deal_touches_in_stage"] == 2


def test_features__floor_the_touch_rates_of_young_stages_and_deals() -> None:
    d1 = _features("2026-01-03").iloc[0]  # 2 days old, in its first stage, 1 touch
    assert d1["n_deal_touches_in_stage"] == 1
    assert d1["deal_touch_rate_in_stage"] == pytest.approx(1 / 3)  # not 1 / 2
    assert d1["deal_touch_rate"] == pytest.approx(1 / 7)  # not 1 / 2


def test_features__count_stage_entries_and_the_mean_days_per_past_stage() -> None:
    d1 = _features("2026-03-05").iloc[0]  # 6 entries (2 re-entries); qualification since Feb 15
    assert d1["n_stage_entries"] == 6
    assert d1["mean_days_per_past_stage"] == pytest.approx((63.0 - 18.0) / 5)
    d3 = _features("2026-02-01").iloc[2]  # qualification Jan 10, proposal Jan 15
    assert d3["n_stage_entries"] == 2
    assert d3["mean_days_per_past_stage"] == pytest.approx(5.0)


def test_features__leave_the_pace_missing_without_a_past_stage() -> None:
    d1 = _features("2026-01-03").iloc[0]
    assert d1["n_stage_entries"] == 1
    assert np.isnan(d1["mean_days_per_past_stage"])
    d3 = _features("2026-01-09").iloc[2]  # before its first stage entry
    assert d3["n_stage_entries"] == 0
    assert np.isnan(d3["mean_days_per_past_stage"])
    assert d3["n_deal_touches_in_stage"] == 0


def test_features__plan_the_cycle_from_the_first_entered_close_date() -> None:
    early, late = _features("2026-02-06"), _features("2026-03-05")  # D1 slipped in between
    for feats in (early, late):
        assert feats["planned_cycle_days"].iloc[0] == pytest.approx(59.0)  # Jan 1 -> Mar 1
        assert feats["planned_cycle_days"].iloc[1] == pytest.approx(27.0)  # Jan 5 -> Feb 1
        assert np.isnan(feats["planned_cycle_days"].iloc[2])  # no date entered


# -- the lead behind the deal -------------------------------------------------------------------


def _leads() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "lead_id": ["L1", "L2"],
            "created_at": ["2025-12-01", "2025-12-20T12:00"],
            "source": ["website", None],
            "industry": ["retail", None],
            "region": ["east", None],
            "company_size": ["size_51_200", None],
            "seniority": ["director", None],
            "budget": ["200000", ""],
            "authority": ["decision_maker", None],
            "need": ["high", None],
            "timeline": ["within_3_months", None],
            "owner_id": ["U1", "U2"],
            "converted_at": ["2026-01-01", "2026-01-05"],
            "erp": ["sap", None],
            "employees": ["120", ""],
        }
    )
    return coerce_frame(raw, LEADS.with_custom_fields(list(LEAD_CUSTOM))).frame


def _lead_activities() -> pd.DataFrame:
    """Touches of the leads before their deals; the web visit is exactly at D1's creation."""
    rows = [
        ("B1", "L1", "2025-12-05", "call"),
        ("B2", "L1", "2025-12-20", "meeting"),
        ("B3", "L1", "2025-12-31", "email_open"),
        ("B4", "L1", "2026-01-01", "web_visit"),
        ("B5", "L2", "2025-12-21", "form_submit"),
    ]
    raw = pd.DataFrame(rows, columns=["activity_id", "lead_id", "occurred_at", "activity_type"])
    return coerce_frame(raw, ACTIVITIES).frame


def _all_activities() -> pd.DataFrame:
    return pd.concat([_activities(), _lead_activities()], ignore_index=True)


def _two_snapshots_per_deal() -> pd.DataFrame:
    deals = _deals()
    snaps = pd.concat(
        [_snapshots(deals, "2026-01-20"), _snapshots(deals, "2026-03-05")], ignore_index=True
    )
    snaps.index = pd.Index([f"s{i}" for i in range(len(snaps))])
    return snaps


def _context(
    snaps: pd.DataFrame, leads: pd.DataFrame | None = None, acts: pd.DataFrame | None = None
) -> pd.DataFrame:
    return lead_context_features(
        snaps,
        _leads() if leads is None else leads,
        _all_activities() if acts is None else acts,
        LEAD_CUSTOM,
    )


def test_lead_context__carries_the_lead_attributes_to_every_snapshot_of_its_deal() -> None:
    ctx = _context(_two_snapshots_per_deal())
    for first, again in (("s0", "s3"), ("s1", "s4")):  # D1 and D2, seen Jan 20 and Mar 5
        pd.testing.assert_series_equal(ctx.loc[first], ctx.loc[again], check_names=False)
    d1, d2 = ctx.loc["s0"], ctx.loc["s1"]
    assert [d1[c] for c in LEAD_CATEGORICAL] == [
        "website",
        "retail",
        "east",
        "size_51_200",
        "director",
        "decision_maker",
        "high",
        "within_3_months",
    ]
    assert d1["budget"] == 200_000.0
    assert all(d2[c] is None for c in LEAD_CATEGORICAL)
    assert np.isnan(d2["budget"])


def test_lead_context__prefixes_the_lead_custom_fields() -> None:
    ctx = _context(_two_snapshots_per_deal())
    assert "erp" not in ctx.columns and "employees" not in ctx.columns
    assert list(ctx[lead_custom_feature("erp")].iloc[:2]) == ["sap", None]
    assert ctx[lead_custom_feature("employees")].iloc[0] == 120.0
    assert np.isnan(ctx[lead_custom_feature("employees")].iloc[1])


def test_lead_context__gives_the_bant_points_of_the_lead() -> None:
    ctx = _context(_two_snapshots_per_deal())
    expected = total_points(_leads())
    assert not np.isnan(expected).any()
    assert list(ctx["lead_bant_points"].iloc[:2]) == pytest.approx(list(expected))
    assert expected[0] > expected[1]  # every answer given vs. none given


def test_lead_context__measures_the_lead_at_its_deal_creation() -> None:
    ctx = _context(_two_snapshots_per_deal())
    d1, d2 = ctx.loc["s0"], ctx.loc["s1"]
    assert d1["lead_age_at_deal_days"] == pytest.approx(31.0)  # Dec 1 -> Jan 1
    assert d2["lead_age_at_deal_days"] == pytest.approx(15.5)  # Dec 20 noon -> Jan 5
    # L1 at Jan 1: call, meeting, email open; the web visit at Jan 1 itself is not before
    assert d1[lead_custom_feature("n_call_90d")] == 1
    assert d1[lead_custom_feature("n_meeting_90d")] == 1
    assert d1[lead_custom_feature("n_email_open_90d")] == 1
    assert d1[lead_custom_feature("n_web_visit_90d")] == 0
    assert d1[lead_custom_feature("n_touches_total")] == 3
    assert d1[lead_custom_feature("days_since_first_touch")] == pytest.approx(27.0)
    assert d1[lead_custom_feature("days_since_last_touch")] == pytest.approx(1.0)
    assert d1[lead_custom_feature("touch_velocity")] == pytest.approx(3 / 30)
    assert d2[lead_custom_feature("n_form_submit_90d")] == 1
    assert d2[lead_custom_feature("days_since_first_touch")] == pytest.approx(15.0)


def test_lead_context__ignores_lead_activities_from_the_deal_creation_on() -> None:
    snaps = _two_snapshots_per_deal()
    before = _context(snaps)
    # all stamped before the Mar 5 snapshots: only the deal's creation may cut them off
    later = coerce_frame(
        pd.DataFrame(
            {
                "activity_id": ["C1", "C2", "C3", "C4"],
                "lead_id": ["L1", "L1", "L2", "L2"],
                "deal_id": ["D1", None, "D2", None],
                "occurred_at": ["2026-01-01", "2026-01-02", "2026-01-05", "2026-02-20"],
                "activity_type": ["meeting", "demo", "call", "web_visit"],
            }
        ),
        ACTIVITIES,
    ).frame
    after = _context(snaps, acts=pd.concat([_all_activities(), later], ignore_index=True))
    pd.testing.assert_frame_equal(before, after)


def test_lead_context__leaves_unknown_leads_missing() -> None:
    snaps = _two_snapshots_per_deal()
    snaps[T.LEAD_ID] = snaps[T.LEAD_ID].where(snaps[T.DEAL_ID] != "D2")  # D2: no lead at all
    ctx = _context(snaps)
    encoder = close_time_feature_encoder(CUSTOM, LEAD_CUSTOM)
    categorical = [c for c in encoder.categorical if c in ctx.columns]
    numeric = [c for c in encoder.numeric if c in ctx.columns]
    assert len(categorical) + len(numeric) == len(ctx.columns)
    for row in ("s1", "s2", "s4", "s5"):  # D2 (no lead id) and D3 (lead L9 unknown)
        assert all(ctx.loc[row, c] is None for c in categorical)
        assert ctx.loc[row, numeric].astype(np.float64).isna().all()
    assert ctx.loc["s0", numeric].notna().all()


def test_lead_context__never_reads_the_lead_outcome_columns() -> None:
    snaps = _two_snapshots_per_deal()
    blind = _leads().drop(columns=[T.CONVERTED_AT, T.DISQUALIFIED_AT])
    pd.testing.assert_frame_equal(_context(snaps), _context(snaps, leads=blind))


@pytest.mark.parametrize("known_leads", [True, False])
def test_lead_context__keeps_categoricals_as_objects_and_numerics_as_floats(
    known_leads: bool,
) -> None:
    leads = _leads() if known_leads else _leads().iloc[:0]
    ctx = _context(_two_snapshots_per_deal(), leads=leads)
    encoder = close_time_feature_encoder(CUSTOM, LEAD_CUSTOM)
    for name in ctx.columns:
        expected = object if name in encoder.categorical else np.float64
        assert ctx[name].dtype == expected, name


def test_close_time_features__match_the_encoder_and_encode() -> None:
    deals = _deals()
    snaps = _two_snapshots_per_deal()
    feats = build_close_time_features(
        snaps,
        leads=_leads(),
        stage_history=_stages(),
        activities=_all_activities(),
        owner_deals=OwnerDealHistory.from_deals(deals),
        deal_custom=CUSTOM,
        lead_custom=LEAD_CUSTOM,
    )
    encoder = close_time_feature_encoder(CUSTOM, LEAD_CUSTOM)
    assert list(feats.columns) == encoder.feature_names
    assert feats.index.equals(snaps.index)
    assert all(feats[c].dtype == np.float64 for c in encoder.numeric)
    assert all(feats[c].dtype == object for c in encoder.categorical)
    matrix = encoder.fit(feats, min_count=1).transform(feats)
    assert matrix.shape == (len(snaps), len(encoder.feature_names))
    np.testing.assert_array_equal(
        matrix[:, : len(encoder.numeric)], feats[encoder.numeric].to_numpy(np.float64)
    )
    for j, name in enumerate(encoder.categorical):
        codes = matrix[:, len(encoder.numeric) + j]
        assert [encoder.decode(name, c) for c in codes] == list(feats[name])


# -- no leakage on a generated CRM ------------------------------------------------------------


@pytest.fixture(scope="module")
def crm() -> GeneratedCRM:
    return generate(GeneratorConfig(leads=3000, seed=11, end_date=date(2026, 10, 31)))


def _custom_columns(crm: GeneratedCRM) -> tuple[list[Column], list[Column]]:
    contract = crm.manifest.contract()
    return list(contract["deals"].custom_columns), list(contract["leads"].custom_columns)


def _close_time_features(
    crm: GeneratedCRM, snaps: pd.DataFrame, tables: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    deal_custom, lead_custom = _custom_columns(crm)
    return build_close_time_features(
        snaps,
        leads=tables["leads"],
        stage_history=tables["stage_history"],
        activities=tables["activities"],
        owner_deals=OwnerDealHistory.from_deals(tables["deals"]),
        deal_custom=deal_custom,
        lead_custom=lead_custom,
    )


def _known_at(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The tables as an export taken at ``as_of`` holds them: nothing created, entered or
    occurring at or after it, and no outcome decided at or after it."""
    leads = tables["leads"]
    leads = leads[leads[T.CREATED_AT] < as_of].copy()
    for col in (T.CONVERTED_AT, T.DISQUALIFIED_AT):
        leads.loc[leads[col] >= as_of, col] = pd.NaT
    deals = tables["deals"]
    deals = deals[deals[T.CREATED_AT] < as_of].copy()
    undecided = deals[T.CLOSED_AT] >= as_of
    deals.loc[undecided, T.CLOSED_AT] = pd.NaT
    deals.loc[undecided, [T.OUTCOME, T.LOST_REASON]] = None
    stages, acts = tables["stage_history"], tables["activities"]
    return {
        "leads": leads,
        "deals": deals,
        "stage_history": stages[stages[T.ENTERED_AT] < as_of],
        "activities": acts[acts[T.OCCURRED_AT] < as_of],
    }


def _leakage_times(tables: dict[str, pd.DataFrame]) -> list[pd.Timestamp]:
    """A plain time, a stage entry's time and a deal touch's time (rows exactly at as_of)."""
    stages = tables["stage_history"]
    proposals = stages[stages[T.STAGE] == "proposal"].sort_values(T.ENTERED_AT)
    acts = tables["activities"]
    touches = acts[acts[T.DEAL_ID].notna() & (acts[T.ACTIVITY_TYPE] == "meeting")]
    touches = touches.sort_values(T.OCCURRED_AT)
    return [
        pd.Timestamp("2025-09-30 15:00"),
        pd.Timestamp(proposals[T.ENTERED_AT].iloc[len(proposals) // 2]),
        pd.Timestamp(touches[T.OCCURRED_AT].iloc[len(touches) * 4 // 5]),
    ]


def test_close_time_features__do_not_change_when_everything_from_as_of_on_is_removed(
    crm: GeneratedCRM,
) -> None:
    tables = crm.tables
    times = _leakage_times(tables)
    parts = [open_deals_at(tables["deals"], t) for t in times]
    snaps = pd.concat(parts, ignore_index=True)  # several as_of in one batch
    full = _close_time_features(crm, snaps, tables)
    deal_custom, lead_custom = _custom_columns(crm)
    assert list(full.columns) == close_time_feature_encoder(deal_custom, lead_custom).feature_names
    start = 0
    for as_of, part in zip(times, parts, strict=True):
        assert len(part) >= 20
        ids = set(part[T.DEAL_ID])
        known = _known_at(tables, as_of)
        # the cut removes rows of these very deals, some stamped exactly at as_of
        acts, stages = tables["activities"], tables["stage_history"]
        cut_acts = acts[(acts[T.OCCURRED_AT] >= as_of) & acts[T.DEAL_ID].isin(ids)]
        cut_stages = stages[(stages[T.ENTERED_AT] >= as_of) & stages[T.DEAL_ID].isin(ids)]
        assert len(cut_acts) > 0 and len(cut_stages) > 0
        assert part[T.CLOSED_AT].notna().any()  # outcomes the full tables already know
        blind = part.assign(**{T.CLOSED_AT: pd.NaT, T.OUTCOME: None, T.LOST_REASON: None}).set_axis(
            full.index[start : start + len(part)]
        )
        seen = _close_time_features(crm, blind, known)
        pd.testing.assert_frame_equal(
            full.iloc[start : start + len(part)], seen, check_exact=False, rtol=1e-9
        )
        start += len(part)
    at_as_of = [
        (tables["activities"][T.OCCURRED_AT] == t).any()
        or (tables["stage_history"][T.ENTERED_AT] == t).any()
        for t in times[1:]
    ]
    assert all(at_as_of)


def test_close_time_features__fix_the_lead_context_at_deal_creation(crm: GeneratedCRM) -> None:
    tables = crm.tables
    deals = tables["deals"]
    snaps = open_deal_snapshots(deals, DealSnapshotSettings(), until=pd.Timestamp("2026-10-31"))
    assert snaps[T.DEAL_ID].duplicated().any()
    _, lead_custom = _custom_columns(crm)
    ctx = lead_context_features(snaps, tables["leads"], tables["activities"], lead_custom)
    per_deal = ctx.groupby(snaps[T.DEAL_ID].to_numpy()).nunique(dropna=False)
    assert (per_deal <= 1).all().all()
    # the lead's activities from its (latest) deal's creation on never matter
    created = deals.groupby(T.LEAD_ID)[T.CREATED_AT].max()
    acts = tables["activities"]
    deal_created = acts[T.LEAD_ID].map(created)
    late = deal_created.notna() & (acts[T.OCCURRED_AT] >= deal_created)
    assert late.sum() > 0
    early_only = lead_context_features(snaps, tables["leads"], acts[~late], lead_custom)
    pd.testing.assert_frame_equal(ctx, early_only)
    assert ctx[lead_custom_feature("n_touches_total")].gt(0).any()


def test_close_time_features__encode_on_generated_snapshots(crm: GeneratedCRM) -> None:
    tables = crm.tables
    snaps = open_deals_at(tables["deals"], pd.Timestamp("2026-06-30"))
    feats = _close_time_features(crm, snaps, tables)
    deal_custom, lead_custom = _custom_columns(crm)
    encoder = close_time_feature_encoder(deal_custom, lead_custom)
    assert list(feats.columns) == encoder.feature_names
    assert set(LEAD_ENGAGEMENT) <= {c.removeprefix("lead_") for c in feats.columns}
    matrix = encoder.fit(feats, min_count=1).transform(feats)
    assert matrix.shape == (len(snaps), len(encoder.feature_names))
    np.testing.assert_array_equal(
        matrix[:, : len(encoder.numeric)], feats[encoder.numeric].to_numpy(np.float64)
    )
    categorical = matrix[:, len(encoder.numeric) :]
    assert np.array_equal(np.isnan(categorical), feats[encoder.categorical].isna().to_numpy())
