"""The calibration study's exact chance that a calibrated forecaster lands in the bands."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bench_forecast_calibration import inside_bands, p_band_if_calibrated, pooled


@pytest.mark.parametrize("n", [24, 27])
def test_p_band_if_calibrated_matches_a_simulation(n: int) -> None:
    rng = np.random.default_rng(0)
    pit = rng.random((200_000, n))
    cov50 = (np.abs(pit - 0.5) <= 0.25).mean(axis=1)
    cov80 = (np.abs(pit - 0.5) <= 0.40).mean(axis=1)
    simulated = np.mean((cov50 >= 0.45) & (cov50 <= 0.55) & (cov80 >= 0.75) & (cov80 <= 0.85))
    assert p_band_if_calibrated(n) == pytest.approx(simulated, abs=0.005)


def test_p_band_if_calibrated_is_low_on_27_periods() -> None:
    """Measured: 0.124 on 27 periods, 0.279 on 24 (the bands allow 13–14 and 21–22 of 27)."""
    assert p_band_if_calibrated(27) == pytest.approx(0.124, abs=0.001)
    assert p_band_if_calibrated(24) == pytest.approx(0.279, abs=0.001)


def test_pooled_counts_pit_deciles() -> None:
    rows = [
        {"in_50": True, "in_80": True, "pit": p, "crps": 1.0, "ape_p50": 0.1, "accuracy": 0.9}
        for p in (0.05, 0.45, 0.55, 0.95)
    ]
    out = pooled(rows)
    assert out["pit_deciles"] == [1, 0, 0, 0, 1, 1, 0, 0, 0, 1]
    assert out["coverage_check"]["80"]["inside"] == 4


def test_inside_bands_needs_both_coverages_inside_their_bands() -> None:
    assert inside_bands({"coverage_50": 0.45, "coverage_80": 0.85})
    assert not inside_bands({"coverage_50": 11 / 27, "coverage_80": 0.8})
    assert not inside_bands({"coverage_50": 0.5, "coverage_80": 23 / 27})
