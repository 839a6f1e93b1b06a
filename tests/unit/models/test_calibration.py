"""Calibration: isotonic vs Platt chosen on validation data, JSON round trip, monotonicity."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from models.calibration import (
    P_MAX,
    P_MIN,
    Calibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    fit_calibrator,
    fit_isotonic,
    fit_logistic,
    fit_platt,
    logit,
    sigmoid,
)
from models.metrics import log_loss

pytestmark = pytest.mark.unit


def _logistic_distortion(seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores that are overconfident-and-shifted versions of the truth: the truth is
    sigmoid(1.8·logit(raw) − 0.7), exactly Platt's family."""
    rng = np.random.default_rng(seed)
    raw = rng.beta(2, 5, n)
    truth = sigmoid(1.8 * logit(raw) - 0.7)
    return raw, (rng.random(n) < truth).astype(int)


def _staircase(seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Monotone in the raw score but a staircase, not a logistic curve in logit(raw)."""
    rng = np.random.default_rng(seed)
    raw = rng.beta(2, 5, n)
    truth = np.select([raw < 0.2, raw < 0.35, raw < 0.5], [0.05, 0.5, 0.55], 0.95)
    return raw, (rng.random(n) < truth).astype(int)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_calibrator__chooses_platt_for_a_logistic_distortion(seed: int) -> None:
    raw, y = _logistic_distortion(seed)

    calibrator, report = fit_calibrator(raw, y)

    assert report["chosen"] == "platt"
    assert isinstance(calibrator, PlattCalibrator)
    assert report["log_loss"]["platt"] < report["log_loss"]["isotonic"]
    assert calibrator.a == pytest.approx(1.8, abs=0.25)
    assert calibrator.b == pytest.approx(-0.7, abs=0.25)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_calibrator__chooses_isotonic_when_the_truth_is_not_logistic_in_logit(
    seed: int,
) -> None:
    raw, y = _staircase(seed)

    calibrator, report = fit_calibrator(raw, y)

    assert report["chosen"] == "isotonic"
    assert isinstance(calibrator, IsotonicCalibrator)
    assert report["log_loss"]["isotonic"] < report["log_loss"]["platt"]


def test_fit_calibrator__reports_both_methods_and_beats_the_raw_scores() -> None:
    raw, y = _logistic_distortion(3)

    calibrator, report = fit_calibrator(raw, y)

    assert set(report["log_loss"]) == set(report["log_loss_in_sample"]) == {"isotonic", "platt"}
    assert report["n"] == raw.size and report["positives"] == int(y.sum())
    assert report["folds"] == 5
    assert log_loss(y, calibrator.predict(raw)) < report["log_loss_uncalibrated"]
    assert json.loads(json.dumps(report, allow_nan=False)) == report


@pytest.mark.parametrize("make", [_logistic_distortion, _staircase])
def test_calibrator__json_round_trip_gives_identical_predictions(make: object) -> None:
    raw, y = make(4)  # type: ignore[operator]
    for calibrator in (fit_isotonic(raw, y), fit_platt(raw, y)):
        payload = json.loads(json.dumps(calibrator.to_dict()))

        restored = Calibrator.from_dict(payload)

        grid = np.r_[0.0, np.linspace(0.0, 1.0, 1001), 1.0, raw]
        assert type(restored) is type(calibrator)
        assert np.array_equal(restored.predict(grid), calibrator.predict(grid))


def test_calibrator__predictions_are_monotone_and_clipped() -> None:
    raw, y = _staircase(5)
    grid = np.linspace(0.0, 1.0, 2001)
    for calibrator in (fit_isotonic(raw, y), fit_platt(raw, y), PlattCalibrator(a=30, b=0)):
        out = calibrator.predict(grid)
        assert np.all(np.diff(out) >= 0)
        assert out.min() >= P_MIN and out.max() <= P_MAX
    assert PlattCalibrator(a=30, b=0).predict([0.0, 1.0]).tolist() == [P_MIN, P_MAX]


def test_fit_platt__never_reverses_the_ranking() -> None:
    # given raw scores that rank backwards
    raw, y = _logistic_distortion(6)

    calibrator = fit_platt(1.0 - raw, y)

    assert calibrator.a == 0.0
    assert calibrator.predict([0.1, 0.9])[0] == pytest.approx(y.mean(), abs=0.01)


def test_fit_logistic__matches_unpenalised_sklearn_without_smoothing() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=3000)
    y = (rng.random(3000) < sigmoid(1.3 * x - 0.4)).astype(int)

    slope, intercept = fit_logistic(x, y, smooth_targets=False)

    reference = LogisticRegression(C=1e12, max_iter=1000).fit(x[:, None], y)
    assert slope == pytest.approx(reference.coef_[0, 0], abs=1e-4)
    assert intercept == pytest.approx(reference.intercept_[0], abs=1e-4)


def test_fit_logistic__stays_finite_on_separable_classes() -> None:
    slope, intercept = fit_logistic([0.0, 1.0, 2.0, 3.0], [0, 0, 1, 1])
    assert np.isfinite([slope, intercept]).all() and slope > 0


def test_fit_calibrator__refuses_too_few_positives() -> None:
    with pytest.raises(ValueError, match="1 positive"):
        fit_calibrator([0.1, 0.2, 0.3, 0.9], [0, 0, 0, 1])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"method": "beta", "a": 1}, "'method'"),
        ({"method": "platt", "a": 1.0}, r"missing key\(s\) \['b'\]"),
        ({"method": "platt", "a": 1.0, "b": 0.0, "c": 2}, r"unknown key\(s\) \['c'\]"),
        ({"method": "platt", "a": -1.0, "b": 0.0}, "'a' = -1.0 is negative"),
        ({"method": "platt", "a": "1", "b": 0.0}, "'a' must be a finite number"),
        ({"method": "isotonic", "x": [0.1, 0.5], "y": [0.4, 0.2]}, "'y' must be non-decreasing"),
        ({"method": "isotonic", "x": [0.1, 0.5], "y": [0.4]}, "differ in length"),
        ({"method": "isotonic", "x": [], "y": []}, "non-empty"),
    ],
)
def test_calibrator_from_dict__rejects_bad_payloads_naming_the_key(
    payload: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Calibrator.from_dict(payload)


def test_calibrator__rejects_raw_scores_outside_zero_one() -> None:
    with pytest.raises(ValueError, match=r"position 1 holds 1\.5"):
        PlattCalibrator(a=1.0, b=0.0).predict([0.5, 1.5])
