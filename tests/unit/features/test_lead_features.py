"""Point-in-time lead features: values on hand-made histories, and no leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_contracts.storage import coerce_frame
from data_contracts.tables import ACTIVITIES, LEADS
from features.lead_features import AS_OF, OwnerHistory, build_lead_features

pytestmark = pytest.mark.unit


def _leads() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4"],
            "created_at": ["2026-01-01", "2026-01-01", "2026-02-01", "2026-05-01"],
            "source": ["website", "wechat", None, "phone"],
            "budget": ["100000", "", "5000", "1"],
            "owner_id": ["U1", "U1", "U2", "U1"],
            "converted_at": ["2026-02-01", "", "2026-06-15", ""],
        }
    )
    return coerce_frame(raw, LEADS).frame


def _activities() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "activity_id": [f"A{i}" for i in range(7)],
            "lead_id": ["L1", "L1", "L1", "L2", "L3", "L3", "L3"],
            "occurred_at": [
                "2026-01-02",
                "2026-01-20",
                "2026-01-28",
                "2026-01-05",
                "2026-02-02",
                "2026-03-01",
                "2026-03-10",
            ],
            "activity_type": [
                "meeting",
                "meeting",
                "email_open",
                "web_visit",
                "call",
                "meeting",
                "demo",
            ],
        }
    )
    return coerce_frame(raw, ACTIVITIES).frame


def _snapshots(leads: pd.DataFrame, as_of: str) -> pd.DataFrame:
    return leads.assign(**{AS_OF: pd.Timestamp(as_of)})


def test_features__count_only_touches_inside_each_window_before_as_of() -> None:
    leads = _leads()
    feats = build_lead_features(
        _snapshots(leads, "2026-01-29"), _activities(), OwnerHistory.from_leads(leads)
    )
    l1 = feats.iloc[0]
    assert l1["n_meeting_7d"] == 0  # meetings on Jan 2 and Jan 20 are 27 and 9 days old
    assert l1["n_meeting_30d"] == 2
    assert l1["n_email_open_7d"] == 1
    assert l1["n_touches_total"] == 3
    assert l1["days_since_last_touch"] == pytest.approx(1.0)
    assert l1["days_since_created"] == pytest.approx(28.0)
    l3 = feats.iloc[2]  # created Feb 1: seen before it exists, it has no touches
    assert l3["n_touches_total"] == 0 and np.isnan(l3["days_since_last_touch"])


def test_features__ignore_touches_exactly_at_as_of() -> None:
    leads = _leads()
    feats = build_lead_features(
        _snapshots(leads, "2026-01-20"), _activities(), OwnerHistory.from_leads(leads)
    )
    assert feats.iloc[0]["n_meeting_30d"] == 1


def test_features__do_not_change_when_future_rows_are_added() -> None:
    leads = _leads()
    acts = _activities()
    as_of = "2026-03-05"
    before = build_lead_features(_snapshots(leads, as_of), acts, OwnerHistory.from_leads(leads))
    future_acts = coerce_frame(
        pd.DataFrame(
            {
                "activity_id": ["F1", "F2", "F3"],
                "lead_id": ["L1", "L3", "L2"],
                "occurred_at": ["2026-03-05", "2026-03-06", "2027-01-01"],
                "activity_type": ["meeting", "demo", "call"],
            }
        ),
        ACTIVITIES,
    ).frame
    future_lead = coerce_frame(
        pd.DataFrame(
            {
                "lead_id": ["L9"],
                "created_at": ["2026-03-05"],
                "owner_id": ["U1"],
                "converted_at": ["2026-03-06"],
            }
        ),
        LEADS,
    ).frame
    all_leads = pd.concat([leads, future_lead], ignore_index=True)
    after = build_lead_features(
        _snapshots(leads, as_of),
        pd.concat([acts, future_acts], ignore_index=True),
        OwnerHistory.from_leads(all_leads),
    )
    pd.testing.assert_frame_equal(before, after)


def test_owner_history__reveals_only_windows_closed_before_as_of() -> None:
    leads = _leads()
    history = OwnerHistory.from_leads(leads)
    owners = pd.Series(["U1", "U1", "U2", None])
    as_of = pd.to_datetime(
        pd.Series(["2026-03-31", "2026-04-02", "2026-06-01", "2026-06-01"])
    ).to_numpy("datetime64[us]")
    n, rate = history.query(owners, as_of)
    # U1's two Jan-1 leads mature on Apr 1 (one converted inside 90 days)
    assert list(n) == [0, 2, 1, 0]  # U2: L3 matured May 2, not converted by then
    assert rate[1] == pytest.approx((1 + 20 * 0.5) / (2 + 20))


def test_owner_history__aggregate_answers_like_the_full_history_after_its_date() -> None:
    leads = _leads()
    history = OwnerHistory.from_leads(leads)
    cut = pd.Timestamp("2026-09-01")
    frozen = OwnerHistory.from_dict(history.aggregate(cut).to_dict())
    owners = pd.Series(["U1", "U2", "nobody"])
    for day in ("2026-10-01", "2026-09-01"):  # after the cut, and at the cut itself
        when = np.array([day] * 3, dtype="datetime64[us]")
        n_full, rate_full = history.query(owners, when)
        n_frozen, rate_frozen = frozen.query(owners, when)
        np.testing.assert_allclose(n_full, n_frozen)
        np.testing.assert_allclose(rate_full, rate_frozen)
    assert n_frozen[0] > 0  # the owner's record is seen at the cut (the end of the data)


def test_features__without_any_activity_match_leads_whose_touches_are_all_later() -> None:
    # the request path's shortcut (no activity rows at all) must give what the general path
    # gives a lead with no touch before as_of
    leads = _leads()
    history = OwnerHistory.from_leads(leads)
    snaps = _snapshots(leads, "2026-01-02")  # every touch is at or after this as_of
    general = build_lead_features(snaps, _activities(), history)
    shortcut = build_lead_features(snaps, _activities().iloc[:0], history)
    assert general["n_touches_total"].eq(0).all()
    pd.testing.assert_frame_equal(shortcut, general)
