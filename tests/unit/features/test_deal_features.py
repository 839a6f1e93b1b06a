"""Point-in-time deal features: values on hand-made histories, and no leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_contracts.spec import Column, ColumnType
from data_contracts.storage import coerce_frame
from data_contracts.tables import ACTIVITIES, DEALS, STAGE_HISTORY
from features.deal_features import (
    AS_OF,
    OwnerDealHistory,
    build_deal_features,
    deal_feature_encoder,
)

pytestmark = pytest.mark.unit

CUSTOM = (Column("seats", ColumnType.INTEGER), Column("segment", ColumnType.STRING))


def _deals() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "deal_id": ["D1", "D2", "D3"],
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
    when = np.array(["2026-07-01"] * 4, dtype="datetime64[us]")
    for full, agg in zip(history.query(owners, when), frozen.query(owners, when), strict=True):
        np.testing.assert_allclose(full, agg)
    n, rate, cycle = frozen.query(owners, when)
    assert list(n) == [2.0, 1.0, 0.0, 0.0]
    assert cycle[0] == pytest.approx(99.0)  # D1: Jan 1 -> Apr 10
    assert rate[2] == pytest.approx(2 / 3)  # an unknown owner gets the pooled rate
