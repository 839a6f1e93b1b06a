"""Deal risk flags: learned stage-dwell thresholds, each flag's boundary, missing values,
reasons in English and Chinese, config errors, and the same-stage comparison that the
training report judges flags by."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from data_contracts.storage import coerce_frame
from data_contracts.tables import ACTIVITIES, DEALS, STAGE_HISTORY
from features.deal_features import AS_OF, OwnerDealHistory, build_deal_features
from models.close_time_training import same_stage_comparison
from models.risk_flags import (
    FLAG_CODES,
    REQUIRED_FEATURES,
    RiskFlag,
    RiskFlagConfig,
    RiskFlagConfigError,
    StageDwell,
    StageDwellStat,
    fit_stage_dwell,
    flag_counts,
    flag_deals,
    load_risk_flag_config,
)

pytestmark = pytest.mark.unit

BEFORE = pd.Timestamp("2025-06-01")
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- hand-built history -----------------------------------------------------------------


def _deals() -> pd.DataFrame:
    rows = [
        ("W1", "2025-01-01", "2025-02-02", "won"),
        ("W2", "2025-01-01", "2025-03-06", "won"),
        ("W3", "2025-01-01", "2025-03-08", "won"),
        ("W4", "2025-01-01", "2025-02-01", "won"),
        ("LATE", "2025-01-01", "2025-06-01", "won"),  # closed exactly at `before`: ignored
        ("L1", "2025-01-01", "2025-05-01", "lost"),
        ("O1", "2025-01-01", None, "open"),
    ]
    raw = pd.DataFrame(rows, columns=["deal_id", "created_at", "closed_at", "outcome"])
    raw["currency"] = "CNY"
    return coerce_frame(raw, DEALS).frame


def _entries(deal: str, start: str, stages_days: list[tuple[str, int]], end: str) -> list[Any]:
    """Consecutive stage entries: each stage lasts its days, then ``end`` is entered."""
    t = pd.Timestamp(start)
    rows = []
    for stage, days in stages_days:
        rows.append((deal, stage, t))
        t += pd.Timedelta(days=days)
    rows.append((deal, end, t))
    return rows


def _stage_history() -> pd.DataFrame:
    q, na, p = "qualification", "needs_analysis", "proposal"
    rows = [
        *_entries("W1", "2025-01-01", [(q, 2), (na, 10), (p, 20)], "won"),
        *_entries("W2", "2025-01-01", [(q, 4), (na, 20), (p, 40)], "won"),
        *_entries("W3", "2025-01-01", [(q, 6), (p, 60)], "won"),
        # W4 regresses: two visits each of qualification and needs analysis
        *_entries("W4", "2025-01-01", [(q, 8), (na, 5), (q, 3), (na, 7)], "won"),
        *_entries("LATE", "2025-01-01", [(q, 101), (p, 50)], "won"),
        *_entries("L1", "2025-01-01", [(q, 60), (p, 60)], "lost"),
        *_entries("O1", "2025-01-01", [(q, 30), (na, 1)], "proposal"),
    ]
    raw = pd.DataFrame(rows, columns=["deal_id", "stage", "entered_at"])
    return coerce_frame(raw, STAGE_HISTORY).frame


# --- fit_stage_dwell --------------------------------------------------------------------


def test_fit_stage_dwell__takes_the_quantile_of_won_visit_days_per_stage() -> None:
    config = RiskFlagConfig(stalled_quantile=0.75)

    dwell = fit_stage_dwell(_deals(), _stage_history(), before=BEFORE, config=config)

    # qualification visits [2, 4, 6, 8, 3]; needs analysis [10, 20, 5, 7]; proposal [20, 40, 60]
    assert dwell.stages["qualification"] == StageDwellStat(days=6.0, n_won_deals=4)
    assert dwell.stages["needs_analysis"] == StageDwellStat(days=12.5, n_won_deals=3)
    assert dwell.stages["proposal"] == StageDwellStat(days=50.0, n_won_deals=3)
    assert dwell.stages["needs_analysis"].days == np.quantile([10, 20, 5, 7], 0.75)
    assert "negotiation" not in dwell.stages
    assert dwell.quantile == 0.75


def test_fit_stage_dwell__ignores_lost_open_and_later_closed_deals() -> None:
    config = RiskFlagConfig(stalled_quantile=1.0)

    dwell = fit_stage_dwell(_deals(), _stage_history(), before=BEFORE, config=config)

    # the maxima would be higher if L1 (lost), O1 (open) or LATE (closed at `before`) counted
    assert dwell.stages["qualification"].days == 8.0
    assert dwell.stages["proposal"].days == 60.0
    later = fit_stage_dwell(
        _deals(), _stage_history(), before=BEFORE + pd.Timedelta(seconds=1), config=config
    )
    assert later.stages["qualification"] == StageDwellStat(days=101.0, n_won_deals=5)


def test_fit_stage_dwell__before_any_close_learns_nothing() -> None:
    dwell = fit_stage_dwell(
        _deals(), _stage_history(), before=pd.Timestamp("2025-01-01"), config=RiskFlagConfig()
    )

    assert dwell.stages == {}
    assert dwell.limit("proposal", RiskFlagConfig()) == (45.0, False)


def test_stage_dwell_limit__falls_back_below_the_minimum_of_won_deals() -> None:
    config = RiskFlagConfig(
        stalled_quantile=0.75,
        stalled_factor=2.0,
        stalled_min_won_deals=4,
        stalled_fallback_days=30.0,
    )
    dwell = fit_stage_dwell(_deals(), _stage_history(), before=BEFORE, config=config)

    assert dwell.limit("qualification", config) == (12.0, True)  # 4 won deals: 2 × 6
    assert dwell.limit("needs_analysis", config) == (30.0, False)  # 3 won deals
    assert dwell.limit("negotiation", config) == (30.0, False)  # none


def test_stage_dwell__round_trips_through_json() -> None:
    dwell = fit_stage_dwell(_deals(), _stage_history(), before=BEFORE, config=RiskFlagConfig())

    restored = StageDwell.from_dict(json.loads(json.dumps(dwell.to_dict())))

    assert restored == dwell
    assert restored.to_dict() == dwell.to_dict()
    assert pd.Timestamp(restored.before) == BEFORE


def test_stage_dwell_from_dict__rejects_a_bad_stored_value() -> None:
    data = fit_stage_dwell(
        _deals(), _stage_history(), before=BEFORE, config=RiskFlagConfig()
    ).to_dict()
    data["stages"]["proposal"]["n_won_deals"] = 0

    with pytest.raises(ValueError, match=r"stages\.proposal\.n_won_deals"):
        StageDwell.from_dict(data)


# --- flag_deals -------------------------------------------------------------------------

DWELL = StageDwell(
    quantile=0.9,
    before=BEFORE.to_pydatetime(),
    stages={
        "proposal": StageDwellStat(days=38.0, n_won_deals=412),
        "negotiation": StageDwellStat(days=10.0, n_won_deals=5),
    },
)
QUIET = {
    "current_stage": "proposal",
    "days_in_stage": 1.0,
    "days_since_last_deal_touch": 1.0,
    "n_deal_touches_total": 5.0,
    "deal_age_days": 10.0,
    "n_close_date_slips": 0.0,
    "days_to_expected_close": 10.0,
    "expected_close_passed": 0.0,
}


def _features(**columns: list[Any]) -> pd.DataFrame:
    """Rows that raise no flag except through the given columns."""
    n = len(next(iter(columns.values())))
    data = {k: [v] * n for k, v in QUIET.items()} | columns
    return pd.DataFrame(data, index=pd.RangeIndex(100, 100 + n))


def _codes(
    features: pd.DataFrame, config: RiskFlagConfig | None = None, p: Any = None
) -> list[list[str]]:
    flags = flag_deals(
        features, p_won_by_expected=p, dwell=DWELL, config=config or RiskFlagConfig()
    )
    return [[f.code for f in row] for row in flags]


def test_flag_deals__flags_a_deal_quiet_on_every_count_with_nothing() -> None:
    assert _codes(_features(days_in_stage=[1.0]), p=np.array([0.9])) == [[]]


def test_flag_deals__stalled_fires_above_the_learned_limit_only() -> None:
    features = _features(days_in_stage=[37.9, 38.0, 38.01, 61.0])

    flags = flag_deals(features, p_won_by_expected=None, dwell=DWELL, config=RiskFlagConfig())

    assert [[f.code for f in row] for row in flags] == [[], [], ["stalled"], ["stalled"]]
    flag = flags[3][0]
    assert (flag.value, flag.threshold) == (61.0, 38.0)
    assert flag.reason_en == (
        "In Proposal / quote for 61 days; won deals spent at most 38 days there "
        "(90th percentile of 412 won deals)."
    )
    assert flag.reason_zh == (
        "处于方案报价阶段已61天；赢单商机在该阶段最多停留38天（412个赢单商机的第90百分位数）。"
    )
    # the numbers tell 38.01 from the 38-day limit
    assert "38.01 days" in flags[2][0].reason_en


def test_flag_deals__stalled_scales_the_learned_quantile_by_the_factor() -> None:
    config = RiskFlagConfig(stalled_factor=1.5)

    flags = flag_deals(
        _features(days_in_stage=[57.0, 58.0]), p_won_by_expected=None, dwell=DWELL, config=config
    )

    assert flags[0] == []
    assert flags[1][0].threshold == 57.0
    assert "57-day limit" in flags[1][0].reason_en
    assert "1.5 × the 90th percentile" in flags[1][0].reason_en
    assert "1.5倍" in flags[1][0].reason_zh


def test_flag_deals__stalled_uses_the_fallback_without_enough_won_deals() -> None:
    # negotiation: 5 won deals < 30; qualification: none at all
    features = _features(
        current_stage=["negotiation", "negotiation", "qualification", "qualification"],
        days_in_stage=[45.0, 45.5, 44.0, 46.0],
    )

    flags = flag_deals(features, p_won_by_expected=None, dwell=DWELL, config=RiskFlagConfig())

    assert [[f.code for f in row] for row in flags] == [[], ["stalled"], [], ["stalled"]]
    assert flags[1][0].threshold == 45.0
    assert "default limit of 45 days" in flags[1][0].reason_en
    assert "only 5 won deals" in flags[1][0].reason_en
    assert "only 0 won deals" in flags[3][0].reason_en
    assert "默认上限45天" in flags[1][0].reason_zh


def test_flag_deals__silent_fires_at_the_configured_days() -> None:
    features = _features(days_since_last_deal_touch=[20.9, 21.0, 30.0])

    flags = flag_deals(features, p_won_by_expected=None, dwell=DWELL, config=RiskFlagConfig())

    assert [[f.code for f in row] for row in flags] == [[], ["silent"], ["silent"]]
    assert (flags[2][0].value, flags[2][0].threshold) == (30.0, 21.0)
    assert flags[2][0].reason_en == "No activity on this deal for 30 days (flagged after 21 days)."
    assert "30天" in flags[2][0].reason_zh


def test_flag_deals__silent_counts_a_never_touched_deal_from_its_creation() -> None:
    features = _features(
        days_since_last_deal_touch=[np.nan, np.nan, np.nan],
        n_deal_touches_total=[0.0, 0.0, np.nan],
        deal_age_days=[20.0, 21.0, 400.0],
    )

    flags = flag_deals(features, p_won_by_expected=None, dwell=DWELL, config=RiskFlagConfig())

    # the last row's touch count is unknown: no evidence of silence
    assert [[f.code for f in row] for row in flags] == [[], ["silent"], []]
    assert flags[1][0].value == 21.0
    assert "since it was created 21 days ago" in flags[1][0].reason_en
    assert "创建21天以来" in flags[1][0].reason_zh


def test_flag_deals__slipped_fires_at_the_minimum_slips_or_a_passed_date() -> None:
    features = _features(
        n_close_date_slips=[1.0, 2.0, 3.0, 0.0, 0.0, 3.0],
        days_to_expected_close=[5.0, 5.0, 5.0, 0.0, -1.0, -4.0],
    )

    flags = flag_deals(features, p_won_by_expected=None, dwell=DWELL, config=RiskFlagConfig())

    codes = [[f.code for f in row] for row in flags]
    assert codes == [[], ["slipped"], ["slipped"], [], ["slipped"], ["slipped"]]
    assert (flags[1][0].value, flags[1][0].threshold) == (2.0, 2.0)
    assert (
        flags[1][0].reason_en == "Expected close date pushed back 2 times (flagged at 2 or more)."
    )
    assert flags[1][0].reason_zh == "预计成交日期已推迟2次（2次及以上即提示）。"
    # passed only: measured in days past the date
    assert (flags[4][0].value, flags[4][0].threshold) == (1.0, 0.0)
    assert flags[4][0].reason_en == "Expected close date passed 1 day ago; the deal is still open."
    assert "已过1天" in flags[4][0].reason_zh
    assert "passed, 4 days ago" in flags[5][0].reason_en
    assert "已过期4天" in flags[5][0].reason_zh


def test_flag_deals__unlikely_fires_below_the_threshold_only() -> None:
    features = _features(days_in_stage=[1.0, 1.0, 1.0, 1.0])
    p = np.array([0.25, 0.2499, 0.1, np.nan])
    config = RiskFlagConfig(unlikely_threshold=0.25)

    flags = flag_deals(features, p_won_by_expected=p, dwell=DWELL, config=config)

    codes = [[f.code for f in row] for row in flags]
    assert codes == [[], ["unlikely_by_expected_date"], ["unlikely_by_expected_date"], []]
    assert (flags[2][0].value, flags[2][0].threshold) == (0.1, 0.25)
    assert flags[2][0].reason_en == (
        "Only a 10% chance of being won by the expected close date (flagged below 25%)."
    )
    assert flags[2][0].reason_zh == "在预计成交日期前赢单的概率仅为10%（低于25%即提示）。"
    assert "24.99%" in flags[1][0].reason_en  # not rounded up to the threshold


def test_flag_deals__without_probabilities_gives_no_unlikely_flags() -> None:
    features = _features(days_in_stage=[1.0])

    assert _codes(features, p=None) == [[]]
    assert _codes(features, p=np.array([0.0])) == [["unlikely_by_expected_date"]]


def test_flag_deals__missing_values_never_flag_or_raise() -> None:
    features = pd.DataFrame(
        {c: [np.nan, None] for c in REQUIRED_FEATURES} | {"current_stage": [None, np.nan]}
    )
    stage_unknown = _features(current_stage=[None], days_in_stage=[1000.0])

    assert _codes(features, p=np.array([np.nan, np.nan])) == [[], []]
    assert _codes(stage_unknown) == [[]]


def test_flag_deals__flags_a_deal_with_an_unknown_stage_on_the_other_risks() -> None:
    features = _features(current_stage=[None], days_since_last_deal_touch=[50.0])

    assert _codes(features, p=np.array([0.01])) == [["silent", "unlikely_by_expected_date"]]


def test_flag_deals__gives_closed_deals_no_flags() -> None:
    bad = {
        "days_in_stage": [900.0, 900.0, 900.0],
        "days_since_last_deal_touch": [900.0] * 3,
        "n_close_date_slips": [9.0] * 3,
        "days_to_expected_close": [-90.0] * 3,
    }
    features = _features(current_stage=["won", "lost", "proposal"], **bad)

    codes = _codes(features, p=np.zeros(3))

    assert codes == [[], [], list(FLAG_CODES)]


def test_flag_deals__accepts_a_categorical_stage_column() -> None:
    features = _features(days_in_stage=[61.0, 61.0])
    features["current_stage"] = pd.Categorical(["proposal", None])

    assert _codes(features) == [["stalled"], []]


def test_flag_deals__rejects_absent_columns_and_misaligned_probabilities() -> None:
    features = _features(days_in_stage=[1.0, 2.0])

    with pytest.raises(ValueError, match="n_close_date_slips"):
        _codes(features.drop(columns=["n_close_date_slips"]))
    with pytest.raises(ValueError, match=r"1 value\(s\) for 2 feature row\(s\)"):
        _codes(features, p=np.array([0.5]))
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        _codes(features, p=np.array([0.5, 1.5]))


def test_flag_deals__does_not_modify_the_features() -> None:
    features = _features(days_in_stage=[61.0], days_since_last_deal_touch=[np.nan])
    before = features.copy()

    _codes(features, p=np.array([0.1]))

    pd.testing.assert_frame_equal(features, before)


def test_flag_deals__every_reason_has_chinese_text_with_its_numbers() -> None:
    features = _features(
        days_in_stage=[61.0],
        days_since_last_deal_touch=[33.0],
        n_close_date_slips=[4.0],
        days_to_expected_close=[-6.0],
    )

    (flags,) = flag_deals(
        features, p_won_by_expected=np.array([0.07]), dwell=DWELL, config=RiskFlagConfig()
    )

    assert [f.code for f in flags] == list(FLAG_CODES)
    for flag, number in zip(flags, ["61", "33", "4", "7%"], strict=True):
        assert CJK.search(flag.reason_zh), flag
        assert number in flag.reason_zh and number in flag.reason_en
        assert flag.reason_zh.endswith("。") and flag.reason_en.endswith(".")


def test_flag_deals__works_on_built_deal_features() -> None:
    deals = _deals()
    open_deal = deals[deals["deal_id"] == "O1"].assign(**{AS_OF: pd.Timestamp("2025-05-01")})
    activities = coerce_frame(
        pd.DataFrame(
            [("A1", None, "O1", "2025-01-03", "call", "")],
            columns=[
                "activity_id",
                "lead_id",
                "deal_id",
                "occurred_at",
                "activity_type",
                "new_expected_close_date",
            ],
        ),
        ACTIVITIES,
    ).frame
    features = build_deal_features(
        open_deal, _stage_history(), activities, OwnerDealHistory.from_deals(deals)
    )
    config = RiskFlagConfig(stalled_quantile=0.75, stalled_min_won_deals=3)
    dwell = fit_stage_dwell(deals, _stage_history(), before=BEFORE, config=config)

    (flags,) = flag_deals(features, p_won_by_expected=None, dwell=dwell, config=config)

    # O1 is in proposal since 2025-02-01 (89 days > 50) and last touched 118 days ago
    assert [(f.code, f.value, f.threshold) for f in flags] == [
        ("stalled", 89.0, 50.0),
        ("silent", 118.0, 21.0),
    ]


def test_flag_counts__counts_deals_per_flag() -> None:
    flag = RiskFlag(code="silent", value=30.0, threshold=21.0, reason_en="x", reason_zh="x")
    stalled = flag.model_copy(update={"code": "stalled"})

    counts = flag_counts([[stalled, flag], [flag], []])

    assert counts == {"stalled": 1, "silent": 2, "slipped": 0, "unlikely_by_expected_date": 0}
    assert list(counts) == list(FLAG_CODES)


# --- config -----------------------------------------------------------------------------


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "risk_flags.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_load_risk_flag_config__the_shipped_defaults_match_the_model_defaults() -> None:
    assert load_risk_flag_config() == RiskFlagConfig()
    assert load_risk_flag_config(None) is load_risk_flag_config(None)


def test_load_risk_flag_config__reads_a_partial_file_over_the_defaults(tmp_path: Path) -> None:
    config = load_risk_flag_config(_write(tmp_path, {"silent_days": 14, "stalled_factor": 1.2}))

    assert config.silent_days == 14.0
    assert config.stalled_factor == 1.2
    assert config.slipped_min_slips == 2
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load_risk_flag_config(empty) == RiskFlagConfig()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stalled_quantile": 1.5}, r"stalled_quantile: .*1\.5.*a quantile in \(0, 1\]"),
        ({"silent_days": -3}, r"silent_days: .*greater than 0.*days > 0"),
        ({"slipped_min_slips": 1.5}, r"slipped_min_slips: .*whole number"),
        ({"unlikely_threshold": "low"}, r"unlikely_threshold: .*'low'.*probability in \[0, 1\]"),
        ({"silent_day": 21}, r"silent_day: unknown setting; the settings are \[.*'silent_days'"),
    ],
)
def test_load_risk_flag_config__names_the_file_the_setting_and_the_fix(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    path = _write(tmp_path, data)

    with pytest.raises(RiskFlagConfigError, match=message) as caught:
        load_risk_flag_config(path)

    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_load_risk_flag_config__rejects_invalid_yaml_non_mappings_and_absent_files(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("silent_days: [21", encoding="utf-8")

    with pytest.raises(RiskFlagConfigError, match=r"broken\.yaml: not valid YAML"):
        load_risk_flag_config(broken)
    with pytest.raises(RiskFlagConfigError, match="must be a mapping"):
        load_risk_flag_config(_write(tmp_path, [1, 2]))
    with pytest.raises(RiskFlagConfigError, match="cannot read risk flag config"):
        load_risk_flag_config(tmp_path / "absent.yaml")


def test_risk_flag_config__is_frozen_and_strict() -> None:
    config = RiskFlagConfig()

    with pytest.raises(ValueError, match="frozen"):
        config.silent_days = 3.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="extra"):
        RiskFlagConfig(silent_day=3)  # type: ignore[call-arg]


def test_same_stage_comparison__sees_through_a_stage_mix_that_flatters_the_flag() -> None:
    # Simpson's paradox: flagged deals sit mostly in the late stage, which wins far more
    # often, so they beat the unflagged ones overall (0.64 vs 0.28) although they do worse
    # than their unflagged peers in each stage (early 0.1 vs 0.2, late 0.7 vs 0.9).
    stage = np.array(["early"] * 100 + ["late"] * 100 + ["early"] * 10 + ["late"] * 90)
    flagged = np.array([False] * 200 + [True] * 100)
    hit = np.concatenate(
        [
            np.arange(100) < 20,  # early, unflagged: 0.2
            np.arange(100) < 90,  # late, unflagged: 0.9
            np.arange(10) < 1,  # early, flagged: 0.1
            np.arange(90) < 63,  # late, flagged: 0.7
        ]
    )
    assert hit[flagged].mean() > hit[~flagged].mean()
    out = same_stage_comparison(flagged, hit, stage)
    assert out is not None and out["n"] == 100
    assert out["rate_unflagged"] == pytest.approx((10 * 0.2 + 90 * 0.9) / 100)
    assert out["rate_flagged"] == pytest.approx(0.64)
    assert out["rate_flagged"] < out["rate_unflagged"]


def test_same_stage_comparison__compares_only_deals_that_have_peers() -> None:
    # stage b is all flagged and the last deal has no stage: no peers, left out of both
    stage = np.array(["a", "a", "b", "b", None], dtype=object)
    flagged = np.array([False, True, True, True, True])
    hit = np.array([True, False, False, True, True])
    assert same_stage_comparison(flagged, hit, stage) == {
        "n": 1,
        "rate_flagged": 0.0,
        "rate_unflagged": 1.0,
    }
    assert same_stage_comparison(np.ones(2, bool), np.ones(2, bool), np.array(["a", "b"])) is None
