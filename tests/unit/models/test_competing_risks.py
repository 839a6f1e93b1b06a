"""Weekly competing-risk curves: closed forms for constant hazards, interpolation, tails."""

from __future__ import annotations

import numpy as np
import pytest

from models.competing_risks import (
    cumulative_incidence,
    curve_at,
    eventual_win,
    won_time_quantiles,
)

pytestmark = pytest.mark.unit


def constant(hw: float, hl: float, weeks: int = 26, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, weeks), hw), np.full((n, weeks), hl)


def test_constant_hazards_match_the_closed_form() -> None:
    hw, hl = 0.05, 0.03
    cw, cl = cumulative_incidence(*constant(hw, hl))
    k = np.arange(1, 27)
    closed = hw / (hw + hl) * (1 - (1 - hw - hl) ** k)
    np.testing.assert_allclose(cw[0], closed, rtol=1e-12)
    np.testing.assert_allclose(cl[0], closed * hl / hw, rtol=1e-12)
    assert np.all(np.diff(cw[0]) >= 0)
    assert np.all(cw + cl <= 1 + 1e-12)


def test_hazards_summing_above_one_are_rescaled() -> None:
    cw, cl = cumulative_incidence(*constant(0.8, 0.6, weeks=3))
    np.testing.assert_allclose(cw[0, -1] + cl[0, -1], 1.0)
    np.testing.assert_allclose(cw[0, -1] / cl[0, -1], 0.8 / 0.6)


def test_curve_at_interpolates_within_weeks_and_holds_beyond() -> None:
    cif = np.array([[0.1, 0.3, 0.4]])
    assert curve_at(cif, 0.0)[0] == 0.0
    assert curve_at(cif, 3.5)[0] == pytest.approx(0.05)
    assert curve_at(cif, 7.0)[0] == pytest.approx(0.1)
    assert curve_at(cif, 10.5)[0] == pytest.approx(0.2)
    assert curve_at(cif, 100.0)[0] == pytest.approx(0.4)
    per_row = curve_at(np.vstack([cif, cif]), np.array([7.0, 14.0]))
    np.testing.assert_allclose(per_row, [0.1, 0.3])


def test_eventual_win_splits_the_open_share_like_the_last_weeks() -> None:
    hw, hl = 0.02, 0.06
    cw, cl = cumulative_incidence(*constant(hw, hl, weeks=10))
    assert eventual_win(cw, cl)[0] == pytest.approx(hw / (hw + hl))


def test_quantiles_of_the_won_date_given_won() -> None:
    cw, _ = cumulative_incidence(*constant(0.1, 0.0, weeks=200))
    q = won_time_quantiles(cw, [0.1, 0.5, 0.9])[0]
    # geometric weeks: P(won by k weeks) = 1 - 0.9^k; the median is near 6.58 weeks
    assert q[1] / 7 == pytest.approx(np.log(0.5) / np.log(0.9), abs=0.1)
    assert q[0] < q[1] < q[2]


def test_quantiles_are_nan_without_any_chance_of_winning() -> None:
    cw, _ = cumulative_incidence(*constant(0.0, 0.1, weeks=5))
    assert np.isnan(won_time_quantiles(cw, [0.5])).all()
