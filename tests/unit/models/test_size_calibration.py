"""Open deals' expected against actual wins, band of deal size by band (known answers)."""

from __future__ import annotations

import numpy as np
import pytest

from models.size_calibration import (
    BAND_NAMES,
    NO_AMOUNT,
    calibration_by_size,
    off_bands,
    pool_bands,
    size_edges,
)


def test_bands_are_cut_at_quantiles_of_the_recorded_amounts_and_add_up() -> None:
    # 100 recorded amounts 1..100: the bands are cut at 50.5, 80.2, 95.05, 99.01
    amount = np.arange(1.0, 101.0)
    chance = np.full(100, 0.2)
    won = amount % 10 == 0  # 10 wins: 10..50 in the bottom half, 60, 70, 80 next, 90, 100
    edges = size_edges(amount)
    assert edges == pytest.approx([50.5, 80.2, 95.05, 99.01])
    bands = calibration_by_size(chance, won, amount, edges)
    assert list(bands) == list(BAND_NAMES)
    assert [b["deal_periods"] for b in bands.values()] == [50, 30, 15, 4, 1]
    assert [b["share"] for b in bands.values()] == pytest.approx([0.5, 0.3, 0.15, 0.04, 0.01])
    bottom, top = bands["bottom_50pct"], bands["top_1pct"]
    assert (bottom["min_amount"], bottom["max_amount"]) == (1.0, 50.0)
    assert bottom["expected_wins"] == pytest.approx(10.0) and bottom["wins"] == 5
    assert bottom["wins_over_expected"] == pytest.approx(0.5)
    # z: the gap over the deals' own Bernoulli spread sqrt(50 · 0.2 · 0.8)
    assert bottom["z"] == pytest.approx((5 - 10) / np.sqrt(50 * 0.16))
    assert bottom["expected_amount"] == pytest.approx(0.2 * sum(range(1, 51)))
    assert bottom["won_amount"] == pytest.approx(10 + 20 + 30 + 40 + 50)
    assert bottom["won_over_expected_amount"] == pytest.approx(150 / 255)
    assert (top["min_amount"], top["wins"], top["won_amount"]) == (100.0, 1, 100.0)
    assert sum(b["expected_wins"] for b in bands.values()) == pytest.approx(chance.sum())
    assert sum(b["wins"] for b in bands.values()) == won.sum()
    # a subset compared on the same cuts: the deals of 41..60 fall in the same two bands
    part = slice(40, 60)
    sub = calibration_by_size(chance[part], won[part], amount[part], edges)
    assert list(sub) == ["bottom_50pct", "50_to_80pct"]
    assert sub["bottom_50pct"]["max_amount"] == 50.0 and sub["50_to_80pct"]["wins"] == 1


def test_an_amount_on_a_cut_belongs_to_the_band_below_and_shares_tell_the_ties() -> None:
    # 60 of 100 deals at 500: the median cut is 500, so they are all in the smallest band,
    # which then holds 60%, not 50%
    amount = np.concatenate([np.full(60, 500.0), np.arange(501.0, 541.0)])
    bands = calibration_by_size(np.full(100, 0.1), np.zeros(100, bool), amount, size_edges(amount))
    assert bands["bottom_50pct"]["max_amount"] == 500.0
    assert bands["bottom_50pct"]["share"] == pytest.approx(0.6)
    assert bands["50_to_80pct"]["min_amount"] == 501.0


def test_deals_without_an_amount_are_a_band_of_their_own_and_empty_bands_are_left_out() -> None:
    amount = np.array([0.0, np.nan, 5.0, 5.0, 5.0])
    chance = np.array([0.5, 0.0, 0.1, 0.2, 0.3])
    won = np.array([True, False, False, False, True])
    bands = calibration_by_size(chance, won, amount, size_edges(amount))
    # all recorded amounts are equal, so on every cut: all in the smallest band
    assert list(bands) == ["bottom_50pct", NO_AMOUNT]
    assert bands["bottom_50pct"]["share"] == pytest.approx(0.6)
    none = bands[NO_AMOUNT]
    assert none["deal_periods"] == 2 and none["wins"] == 1 and none["expected_wins"] == 0.5
    assert none["expected_amount"] == 0.0 and none["won_amount"] == 0.0
    assert none["won_over_expected_amount"] is None  # no amount was expected


def test_nothing_expected_gives_no_ratio_and_bad_input_says_what_to_pass() -> None:
    bands = calibration_by_size([0.0, 0.0], [False, False], [1.0, 2.0], size_edges([1.0, 2.0]))
    assert all(b["wins_over_expected"] is None and b["z"] is None for b in bands.values())
    assert calibration_by_size([], [], [], size_edges([])) == {}
    with pytest.raises(ValueError, match="one entry per open deal and period"):
        calibration_by_size([0.1], [True, False], [1.0], size_edges([1.0]))
    with pytest.raises(ValueError, match="cut them with size_edges"):
        calibration_by_size([0.1], [True], [1.0], [])


def test_off_bands_are_those_at_least_two_spreads_off_most_over_forecast_first() -> None:
    bands = {
        "bottom_50pct": {"z": 0.4},
        "80_to_95pct": {"z": 2.5},
        "top_1pct": {"z": -3.1},
        "95_to_99pct": {"z": -2.0},
        "no_amount": {"z": None},
    }
    assert off_bands(bands) == ["top_1pct", "95_to_99pct", "80_to_95pct"]
    assert off_bands(bands, z_min=3.0) == ["top_1pct"]


def test_pooled_results_on_the_same_cuts_are_the_bands_of_the_pooled_deals() -> None:
    rng = np.random.default_rng(3)
    amount = np.where(rng.random(400) < 0.05, 0.0, rng.lognormal(11, 1.2, 400))
    chance = rng.uniform(0.0, 0.6, 400)
    won = rng.random(400) < chance * 0.9
    edges = size_edges(amount)
    halves = [calibration_by_size(chance[s], won[s], amount[s], edges) for s in (
        slice(0, 150), slice(150, 400))]  # fmt: skip
    pooled, whole = pool_bands(halves), calibration_by_size(chance, won, amount, edges)
    assert list(pooled) == list(whole)
    for name, band in whole.items():
        for key, value in band.items():
            assert pooled[name][key] == pytest.approx(value), (name, key)
    assert pool_bands([]) == {}
