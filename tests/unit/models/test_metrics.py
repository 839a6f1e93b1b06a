"""Metrics on probability scores (against hand-computed values and scikit-learn), and the
evaluation figures built on them."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from models import metrics as M
from models import plots

pytestmark = pytest.mark.unit


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray]:
    """2,000 rows, calibrated probabilities rounded to 2 decimals (plenty of ties)."""
    rng = np.random.default_rng(7)
    p = np.round(rng.beta(2, 5, 2000), 2)
    y = (rng.random(2000) < p).astype(int)
    return y, p


# --- ranking ----------------------------------------------------------------------------


def test_roc_auc__matches_a_hand_computed_case() -> None:
    # pairs (pos, neg): (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4) → 3 of 4 ordered
    assert M.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_roc_auc__counts_a_tied_pair_as_half() -> None:
    assert M.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx((1 + 0.5 + 1 + 1) / 4)


def test_ranking_metrics__agree_with_sklearn_with_ties(scored: tuple) -> None:
    y, p = scored
    assert M.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert M.average_precision(y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)


def test_average_precision__matches_a_hand_computed_case() -> None:
    # ranked: 0.8 (pos) P=1 R=.5; 0.4 (neg); 0.35 (pos) P=2/3 R=1 → AP = .5·1 + .5·2/3
    value = M.average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert value == pytest.approx(0.5 + 0.5 * 2 / 3)


# --- probability quality ----------------------------------------------------------------


def test_log_loss__matches_a_hand_computed_case_and_sklearn(scored: tuple) -> None:
    assert M.log_loss([1, 0], [0.8, 0.3]) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
    y, p = scored
    q = np.clip(p, 1e-15, 1 - 1e-15)
    assert M.log_loss(y, p) == pytest.approx(skm.log_loss(y, q), abs=1e-12)


def test_log_loss__clips_a_confident_mistake() -> None:
    assert M.log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15))
    assert M.log_loss([1], [0.0], eps=1e-6) == pytest.approx(-math.log(1e-6))


def test_brier_score__matches_a_hand_computed_case_and_sklearn(scored: tuple) -> None:
    assert M.brier_score([1, 0], [0.8, 0.3]) == pytest.approx((0.2**2 + 0.3**2) / 2)
    y, p = scored
    assert M.brier_score(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)


# --- calibration ------------------------------------------------------------------------


def test_ece__is_zero_for_perfectly_calibrated_bins() -> None:
    # given 10 equal-count bins of 10 rows, bin b predicting b/10 with b positives in it
    p = np.repeat(np.arange(10) / 10, 10)
    y = np.concatenate([[1] * b + [0] * (10 - b) for b in range(10)])

    assert M.expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)


def test_ece__matches_a_known_case() -> None:
    # bin 1: p=.2, observed 1/4 → gap .05; bin 2: p=.6, observed 4/4 → gap .4
    p = [0.2, 0.2, 0.2, 0.2, 0.6, 0.6, 0.6, 0.6]
    y = [1, 0, 0, 0, 1, 1, 1, 1]
    assert M.expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.5 * 0.05 + 0.5 * 0.4)


def test_ece__does_not_depend_on_row_order_when_scores_tie() -> None:
    # given one score for every row: all bins share the overall rate pro rata
    y = np.array([1] * 30 + [0] * 70)
    p = np.full(100, 0.5)
    assert M.expected_calibration_error(y, p) == pytest.approx(0.2)
    shuffled = np.random.default_rng(0).permutation(100)
    assert M.expected_calibration_error(y[shuffled], p) == pytest.approx(0.2)


def test_reliability_curve__bins_have_equal_counts_and_wilson_intervals(scored: tuple) -> None:
    y, p = scored
    curve = M.reliability_curve(y, p)

    assert curve.count.tolist() == [200] * 10
    assert np.all(np.diff(curve.mean_predicted) > 0)
    assert np.all(curve.ci_low <= curve.observed_rate)
    assert np.all(curve.observed_rate <= curve.ci_high)
    ece = float(np.sum(curve.count * np.abs(curve.mean_predicted - curve.observed_rate)) / 2000)
    assert M.expected_calibration_error(y, p) == pytest.approx(ece)
    assert json.dumps(curve.to_records(), allow_nan=False)


def test_wilson_interval__matches_the_closed_form_at_zero_successes() -> None:
    low, high = M.wilson_interval([0], [10])
    z2 = M.Z_95**2
    assert low[0] == 0.0
    assert high[0] == pytest.approx(z2 / (10 + z2))


def test_reliability_curve__uniform_bins_leave_out_empty_bins() -> None:
    curve = M.reliability_curve([0, 1, 1], [0.05, 0.93, 1.0], strategy="uniform")
    assert curve.count.tolist() == [1, 2]
    assert curve.observed_rate.tolist() == [0.0, 1.0]


# --- lift -------------------------------------------------------------------------------


def test_lift__of_a_perfect_ranking_is_one_over_the_base_rate() -> None:
    # given 1,000 rows with 100 positives, all scored above every negative
    rng = np.random.default_rng(1)
    y = np.zeros(1000, dtype=int)
    y[rng.choice(1000, 100, replace=False)] = 1
    p = np.where(y == 1, 0.9, 0.1) + rng.uniform(-0.05, 0.05, 1000)

    assert M.top_decile_rate(y, p) == pytest.approx(1.0)
    assert M.top_decile_lift(y, p) == pytest.approx(10.0)
    curve = M.lift_curve(y, p)
    assert curve.lift.tolist() == pytest.approx([10.0] + [0.0] * 9)
    assert curve.cumulative_gain[0] == pytest.approx(1.0)
    assert curve.cumulative_lift[-1] == pytest.approx(1.0)


def test_lift__of_a_constant_score_is_one_in_every_decile() -> None:
    y = np.array([1] * 37 + [0] * 963)
    curve = M.lift_curve(y, np.full(1000, 0.3))
    assert curve.lift == pytest.approx(np.ones(10))
    assert M.top_decile_lift(y, np.full(1000, 0.3)) == pytest.approx(1.0)


def test_lift__deciles_cover_every_row_once() -> None:
    curve = M.lift_curve(np.r_[np.ones(5), np.zeros(18)], np.linspace(0, 1, 23))
    assert curve.count.tolist() == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert curve.positives.sum() == pytest.approx(5.0)
    assert curve.cumulative_gain[-1] == pytest.approx(1.0)


# --- degenerate and invalid input -------------------------------------------------------


def test_roc_auc__is_nan_with_a_reason_on_one_class() -> None:
    with pytest.warns(M.UndefinedMetricWarning, match="only negatives"):
        assert math.isnan(M.roc_auc([0, 0, 0], [0.1, 0.2, 0.3]))
    with pytest.warns(M.UndefinedMetricWarning, match="no positive"):
        assert math.isnan(M.average_precision([0, 0], [0.1, 0.2]))
    with pytest.warns(M.UndefinedMetricWarning, match="base rate is 0"):
        assert math.isnan(M.top_decile_lift([0, 0], [0.1, 0.2]))


def test_classification_report__gives_none_and_reasons_on_empty_input() -> None:
    report = M.classification_report([], [])

    assert report["n"] == 0
    for key in ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "top_decile_lift"):
        assert report[key] is None
        assert report["undefined"][key] == "no rows"


def test_classification_report__on_one_class_keeps_what_is_defined() -> None:
    report = M.classification_report([1, 1, 1], [0.2, 0.3, 0.4])

    assert report["roc_auc"] is None
    assert "only positives" in report["undefined"]["roc_auc"]
    assert report["log_loss"] == pytest.approx(-np.mean(np.log([0.2, 0.3, 0.4])))
    assert report["pr_auc"] == pytest.approx(1.0)
    assert set(report["undefined"]) == {"roc_auc"}


def test_classification_report__bundles_every_metric_as_json(scored: tuple) -> None:
    y, p = scored
    report = M.classification_report(y, p)

    assert report["undefined"] == {}
    assert report["roc_auc"] == pytest.approx(M.roc_auc(y, p))
    assert report["ece"] == pytest.approx(M.expected_calibration_error(y, p))
    assert report["top_decile_lift"] == pytest.approx(M.top_decile_lift(y, p))
    assert report["positives"] == int(y.sum())
    assert json.loads(json.dumps(report, allow_nan=False)) == report


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 2], [0.1, 0.2], "position 1 holds 2"),
        ([0, 1], [0.1, float("nan")], "position 1"),
        ([0, 1], [0.1, 1.2], "position 1 holds 1.2"),
        ([0, 1, 1], [0.1, 0.2], "same length"),
    ],
)
def test_metrics__reject_invalid_input_saying_where(y: list, p: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        M.classification_report(y, p)


# --- segments ---------------------------------------------------------------------------


def test_segment_report__gives_each_value_its_metrics_and_reasons() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 1])
    p = np.array([0.9, 0.2, 0.7, 0.4, 0.1, 0.3, 0.6])
    source = np.array(["web", "web", "web", "web", "fair", "fair", None], dtype=object)

    report = M.segment_report(y, p, {"source": source})["source"]

    assert list(report) == ["web", "fair", M.MISSING_SEGMENT]  # by decreasing n
    assert report["web"]["n"] == 4
    assert report["web"]["positives"] == 2
    assert report["web"]["roc_auc"] == pytest.approx(1.0)
    assert report["fair"]["roc_auc"] is None
    assert "only negatives" in report["fair"]["undefined"]["roc_auc"]
    assert report["fair"]["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.7])))
    assert report[M.MISSING_SEGMENT]["n"] == 1


def test_segment_report__rejects_a_segment_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="segment 'region'"):
        M.segment_report([0, 1], [0.2, 0.8], {"region": ["north"]})


# --- figures ----------------------------------------------------------------------------


def _png(figure: object) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")  # type: ignore[attr-defined]
    return buffer.getvalue()


def test_plots__return_figures_without_touching_pyplot(scored: tuple) -> None:
    import matplotlib.pyplot as plt

    y, p = scored
    open_before = plt.get_fignums()
    baseline = {"bant": np.clip(p * 1.4, 0, 1)}

    figures = [
        plots.reliability_diagram(y, p, baselines=baseline),
        plots.lift_chart(y, p, baselines=baseline),
        plots.feature_importance_chart(["a", "b", "c"], [1.0, 5.0, 2.0], top_n=2),
    ]

    assert plt.get_fignums() == open_before
    for figure in figures:
        assert _png(figure).startswith(b"\x89PNG")
    legend_box = figures[0].axes[0].get_legend()
    assert legend_box is not None
    legend = [t.get_text() for t in legend_box.get_texts()]
    assert legend[0].startswith("model (ECE") and legend[1].startswith("bant (ECE")
    bars = [t.get_text() for t in figures[2].axes[0].get_yticklabels()]
    assert bars == ["c", "b"]  # the two largest, largest on top


def test_feature_importance_chart__rejects_misaligned_names() -> None:
    with pytest.raises(ValueError, match="equally long"):
        plots.feature_importance_chart(["a"], [1.0, 2.0])
