"""BANT rules: points per answer, missing answers, unknown codes, reasons in English and
Chinese, config validation, and fitting the score mapping."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from data_contracts.vocabulary import AUTHORITIES, NEEDS, TIMELINES
from models import bant
from models.bant import (
    BantConfig,
    BantConfigError,
    LogisticMapping,
    dump_config,
    explain,
    fit_mapping,
    load_config,
    load_default_config,
    parse_config,
    reason_for,
    score_frame,
)
from models.metrics import log_loss

pytestmark = pytest.mark.unit

VOCABULARIES = {"authority": AUTHORITIES, "need": NEEDS, "timeline": TIMELINES}


def _leads(n: int, seed: int, missing_share: float = 0.15) -> pd.DataFrame:
    """Random BANT answers with some left unanswered."""
    rng = np.random.default_rng(seed)

    def answers(codes: list[str]) -> np.ndarray:
        values = rng.choice(np.array(codes, dtype=object), n)
        values[rng.random(n) < missing_share] = None
        return values

    budget = rng.lognormal(11.5, 1.2, n)
    budget[rng.random(n) < missing_share] = np.nan
    return pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "budget": budget,
            "authority": answers(list(AUTHORITIES)),
            "need": answers(list(NEEDS)),
            "timeline": answers(list(TIMELINES)),
        }
    )


@pytest.fixture(scope="module")
def config() -> BantConfig:
    return load_default_config()


# --- points per factor ------------------------------------------------------------------


@pytest.mark.parametrize("factor", ["authority", "need", "timeline"])
def test_score_frame__gives_each_answer_its_configured_points(
    config: BantConfig, factor: str
) -> None:
    codes = [*VOCABULARIES[factor], None]
    leads = pd.DataFrame(
        {"budget": np.nan, "authority": None, "need": None, "timeline": None},
        index=range(len(codes)),
    )
    leads[factor] = pd.Series(codes, dtype=object)

    scored = score_frame(leads, config)

    table = config.points_table(factor)
    expected = [table[c] for c in VOCABULARIES[factor]] + [table["missing"]]
    assert scored[f"points_{factor}"].tolist() == expected
    assert scored[f"answer_{factor}"].astype(str).tolist() == [*VOCABULARIES[factor], "missing"]


@pytest.mark.parametrize(
    ("budget", "points", "answer"),
    [
        (2_000_000.0, 30.0, "ge_500000"),
        (500_000.0, 30.0, "ge_500000"),
        (499_999.99, 20.0, "100000_to_500000"),
        (100_000.0, 20.0, "100000_to_500000"),
        (99_999.0, 10.0, "lt_100000"),
        (0.0, 10.0, "lt_100000"),
        (np.nan, 0.0, "missing"),
    ],
)
def test_score_frame__puts_budgets_in_their_band(
    config: BantConfig, budget: float, points: float, answer: str
) -> None:
    leads = pd.DataFrame(
        {"budget": [budget], "authority": [None], "need": [None], "timeline": [None]}
    )

    scored = score_frame(leads, config)

    assert scored["points_budget"].iloc[0] == points
    assert scored["answer_budget"].iloc[0] == answer
    assert explain({"budget": budget}, config).points["budget"] == points


def test_score_frame__maps_total_points_through_the_logistic_and_grades(config: BantConfig) -> None:
    leads = _leads(500, seed=1)

    scored = score_frame(leads, config)

    parts = scored[["points_budget", "points_authority", "points_need", "points_timeline"]]
    assert np.allclose(scored["points_total"], parts.sum(axis=1))
    z = config.mapping.intercept + config.mapping.slope * scored["points_total"]
    assert np.allclose(scored["score"], 1 / (1 + np.exp(-z)))
    top = scored["score"] >= config.grades.a
    assert (scored.loc[top, "grade"] == "A").all()
    assert (scored.loc[scored["score"] < config.grades.c, "grade"] == "D").all()
    assert (scored["scored_by"] == "rules").all()
    assert scored.index.equals(leads.index)


def test_score_frame__gives_the_best_lead_the_maximum_points_and_an_a(config: BantConfig) -> None:
    best = {
        "budget": 1e6,
        "authority": "decision_maker",
        "need": "high",
        "timeline": "within_1_month",
    }

    result = explain(best, config)

    assert result.total_points == config.max_points == 100.0
    assert result.grade == "A"
    assert explain({}, config).total_points == config.min_points == 0.0


def test_score_frame__does_not_modify_its_input_and_accepts_categoricals(
    config: BantConfig,
) -> None:
    leads = _leads(200, seed=2)
    before = leads.copy()
    as_categories = leads.astype(
        {"authority": "category", "need": "category", "timeline": "category"}
    )

    plain = score_frame(leads, config)
    categorical = score_frame(as_categories, config)

    pd.testing.assert_frame_equal(leads, before)
    pd.testing.assert_series_equal(plain["score"], categorical["score"])


def test_explain__agrees_with_score_frame_lead_by_lead(config: BantConfig) -> None:
    leads = _leads(300, seed=3)
    scored = score_frame(leads, config)

    for record, (_, row) in zip(leads.to_dict("records"), scored.iterrows(), strict=True):
        result = explain(record, config)
        assert result.score == pytest.approx(row["score"], abs=1e-15)
        assert result.grade == row["grade"]
        assert result.points == {
            f: row[f"points_{f}"] for f in ("budget", "authority", "need", "timeline")
        }
        assert [r.answer for r in result.reasons] == [
            row[f"answer_{f}"] for f in ("budget", "authority", "need", "timeline")
        ]


# --- missing answers --------------------------------------------------------------------


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA])
def test_explain__scores_a_missing_answer_with_the_missing_points(
    config: BantConfig, missing: object
) -> None:
    result = explain({"budget": missing, "authority": missing, "need": missing}, config)

    assert result.points == {
        "budget": config.budget.missing,
        "authority": config.authority["missing"],
        "need": config.need["missing"],
        "timeline": config.timeline["missing"],
    }
    assert [r.answer for r in result.reasons] == ["missing"] * 4
    assert result.reasons[1].text_en == "Authority not given: +0 points"
    assert result.reasons[1].text_zh == "决策权未填写：+0分"


def test_score_frame__scores_an_all_missing_column_as_not_given(config: BantConfig) -> None:
    leads = pd.DataFrame(
        {"budget": [None, None], "authority": [None, None], "need": None, "timeline": None}
    )

    scored = score_frame(leads, config)

    assert scored["points_total"].tolist() == [0.0, 0.0]
    assert scored["answer_authority"].astype(str).tolist() == ["missing", "missing"]


# --- unknown codes and bad values ---------------------------------------------------------


def test_score_frame__rejects_unknown_codes_naming_field_value_and_rows(config: BantConfig) -> None:
    leads = _leads(10, seed=4)
    leads.loc[[3, 7], "authority"] = "boss"

    with pytest.raises(
        ValueError, match=r"authority: unknown answer code\(s\) 'boss' in 2 row"
    ) as e:
        score_frame(leads, config)
    assert "L3, L7" in str(e.value)


@pytest.mark.parametrize(
    ("lead", "message"),
    [
        ({"need": "urgent"}, "need: unknown answer code 'urgent'"),
        ({"timeline": "missing"}, "timeline: unknown answer code 'missing'"),
        ({"authority": 1}, "authority: unknown answer code 1"),
        ({"budget": "100000"}, "budget: '100000' is not a number"),
        ({"budget": True}, "budget: True is not a number"),
        ({"budget": -5.0}, "budget: -5.0 must be a finite amount"),
        ({"budget": float("inf")}, "budget: inf must be a finite amount"),
    ],
)
def test_explain__rejects_bad_values_naming_the_field(
    config: BantConfig, lead: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        explain(lead, config)


def test_explain__names_the_lead_in_its_errors(config: BantConfig) -> None:
    with pytest.raises(ValueError, match="lead 'L9': need"):
        explain({"lead_id": "L9", "need": "urgent"}, config)


def test_score_frame__rejects_bad_budgets_and_absent_columns(config: BantConfig) -> None:
    leads = _leads(5, seed=5)
    with pytest.raises(ValueError, match=r"budget: -1.0 is not a finite amount ≥ 0, in 1 row"):
        score_frame(leads.assign(budget=[-1.0, 1.0, 2.0, 3.0, 4.0]), config)
    with pytest.raises(ValueError, match="budget: 'lots' is not a number"):
        score_frame(leads.assign(budget=pd.Series([1.0, "lots", None, 2, 3], dtype=object)), config)
    with pytest.raises(ValueError, match="budget: column has dtype"):
        score_frame(leads.assign(budget=["1", "2", "3", "4", "5"]), config)
    with pytest.raises(ValueError, match=r"no column\(s\) \['need'\]"):
        score_frame(leads.drop(columns="need"), config)


# --- reasons ------------------------------------------------------------------------------


def test_explain__gives_one_reason_per_factor_in_both_languages(config: BantConfig) -> None:
    lead = {
        "budget": 800_000,
        "authority": "decision_maker",
        "need": "medium",
        "timeline": "within_3_months",
    }

    reasons = explain(lead, config).reasons

    assert [r.factor for r in reasons] == ["budget", "authority", "need", "timeline"]
    assert [r.text_en for r in reasons] == [
        "Budget of 500,000 CNY or more: +30 points",
        "Decision maker: +25 points",
        "Medium need: +15 points",
        "Buying within 3 months: +15 points",
    ]
    assert [r.text_zh for r in reasons] == [
        "预算50万元及以上：+30分",
        "决策者：+25分",
        "需求一般：+15分",
        "3个月内采购：+15分",
    ]


def test_reasons__use_the_vocabulary_labels_for_every_code(config: BantConfig) -> None:
    for factor, vocabulary in VOCABULARIES.items():
        for code, (label_en, label_zh) in vocabulary.items():
            reason = reason_for(config, factor, code)
            assert reason.text_en.startswith(f"{label_en}: ")
            assert reason.text_zh.startswith(f"{label_zh}：")
            assert reason.text_zh.endswith("分")


def test_reasons__describe_budget_bands_in_both_languages(config: BantConfig) -> None:
    middle = reason_for(config, "budget", "100000_to_500000")
    low = reason_for(config, "budget", "lt_100000")
    assert (middle.text_en, middle.text_zh) == (
        "Budget of 100,000–500,000 CNY: +20 points",
        "预算10万–50万元：+20分",
    )
    assert (low.text_en, low.text_zh) == (
        "Budget under 100,000 CNY: +10 points",
        "预算10万元以下：+10分",
    )


def test_reasons__sign_negative_and_fractional_points(config: BantConfig) -> None:
    data = config.model_dump()
    data["need"] |= {"low": -5, "medium": 1, "high": 2.5}
    custom = parse_config(data)
    assert reason_for(custom, "need", "low").text_en == "Low need: -5 points"
    assert reason_for(custom, "need", "medium").text_en == "Medium need: +1 point"
    assert reason_for(custom, "need", "high").text_zh == "需求强烈：+2.5分"


def test_explain__says_rules_and_whether_calibrated(config: BantConfig) -> None:
    result = explain({"authority": "influencer"}, config)
    assert result.scored_by == "rules"
    assert result.calibrated is False
    assert result.model_dump(mode="json")["reasons"][1]["answer"] == "influencer"


# --- config ------------------------------------------------------------------------------


def test_default_config__ships_in_the_package_and_round_trips_as_yaml(config: BantConfig) -> None:
    assert config.version == 1
    assert config.mapping.fitted is False
    assert parse_config(yaml.safe_load(dump_config(config))) == config
    assert load_config(None) is load_default_config()


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(bonus=3), r"bonus: Extra inputs are not permitted"),
        (
            lambda d: d["authority"].update(boss=30),
            r"authority: unknown answer code\(s\) \['boss'\]",
        ),
        (lambda d: d["need"].pop("low"), r"need: no points for \['low'\]"),
        (lambda d: d["timeline"].update(within_1_month="soon"), r"timeline.within_1_month"),
        (lambda d: d["budget"]["bands"][0].update(pointz=3), r"budget.bands.0.pointz"),
        (lambda d: d["budget"]["bands"].reverse(), r"budget.bands: .*highest down"),
        (lambda d: d["budget"]["bands"].pop(), r"last band must start at min_amount 0"),
        (lambda d: d["mapping"].update(slope=0), r"mapping.slope"),
        (lambda d: d["grades"].update(a=0.2), r"grades: .*strictly decreasing"),
    ],
)
def test_load_config__names_the_file_and_the_bad_key(
    tmp_path: Path, config: BantConfig, change: object, message: str
) -> None:
    data = config.model_dump(mode="json")
    change(data)  # type: ignore[operator]
    path = _write(tmp_path, data)

    with pytest.raises(BantConfigError, match=message) as e:
        load_config(path)
    assert str(path) in str(e.value)


def test_load_config__reports_every_problem_at_once(tmp_path: Path, config: BantConfig) -> None:
    data = config.model_dump(mode="json")
    data["authority"]["boss"] = 1
    data["need"]["urgent"] = 1
    with pytest.raises(BantConfigError, match=r"2 problem\(s\)"):
        load_config(_write(tmp_path, data))


def test_load_config__rejects_invalid_yaml_and_non_mappings(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("budget: [unclosed", encoding="utf-8")
    with pytest.raises(BantConfigError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(BantConfigError, match="must be a mapping"):
        load_config(_write(tmp_path, [1, 2]))


# --- fitting the mapping ------------------------------------------------------------------


def _outcomes(leads: pd.DataFrame, config: BantConfig, seed: int) -> np.ndarray:
    """Conversions drawn from a truth that follows the points but differs from the default
    mapping (a lower base rate and a flatter slope)."""
    points = score_frame(leads, config)["points_total"].to_numpy()
    truth = 1 / (1 + np.exp(-(-3.5 + 0.035 * points)))
    return (np.random.default_rng(seed).random(len(leads)) < truth).astype(int)


def test_fit_mapping__improves_log_loss_on_held_out_leads(config: BantConfig) -> None:
    # given training and later test leads whose conversions follow the points
    train, test = _leads(6000, seed=10), _leads(3000, seed=11)
    y_train, y_test = _outcomes(train, config, seed=12), _outcomes(test, config, seed=13)

    # when the mapping is fitted on the training leads only
    fitted = fit_mapping(score_frame(train, config), y_train, config)

    # then the test log loss drops, and the points per answer are unchanged
    before = log_loss(y_test, score_frame(test, config)["score"].to_numpy())
    after = log_loss(y_test, score_frame(test, fitted)["score"].to_numpy())
    assert after < before - 0.05
    assert fitted.mapping.fitted and fitted.mapping.fitted_rows == 6000
    assert fitted.mapping.slope == pytest.approx(0.035, abs=0.01)
    assert fitted.mapping.intercept == pytest.approx(-3.5, abs=0.4)
    assert fitted.model_dump(exclude={"mapping"}) == config.model_dump(exclude={"mapping"})
    assert explain({"need": "high"}, fitted).calibrated is True


def test_fit_mapping__accepts_an_array_of_points(config: BantConfig) -> None:
    leads = _leads(2000, seed=14)
    y = _outcomes(leads, config, seed=15)
    from_frame = fit_mapping(score_frame(leads, config), y, config)
    from_array = fit_mapping(bant.total_points(leads, config), y)
    assert from_frame.mapping == from_array.mapping


def test_fit_mapping__refuses_points_that_rank_backwards(config: BantConfig) -> None:
    leads = _leads(2000, seed=16)
    y = _outcomes(leads, config, seed=17)
    points = bant.total_points(leads, config)
    with pytest.raises(ValueError, match="do not rank these outcomes"):
        fit_mapping(-points, y, config)


def test_fit_mapping__refuses_one_class_labels(config: BantConfig) -> None:
    with pytest.raises(ValueError, match="both classes"):
        fit_mapping(np.array([10.0, 50.0, 90.0]), np.zeros(3), config)


def test_with_mapping__validates_the_new_mapping(config: BantConfig) -> None:
    other = config.with_mapping(LogisticMapping(intercept=-2.0, slope=0.1))
    assert other.mapping.intercept == -2.0
    assert math.isclose(explain({}, other).score, 1 / (1 + math.exp(2.0)))
