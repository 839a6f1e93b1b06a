"""Path contributions: they add up to the margin, agree with TreeSHAP where they must."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from models.attribution import PathAttribution, exact_contributions, top_k_agreement

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def booster_and_rows() -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3_000, 6))
    x[:, 5] = rng.integers(0, 5, len(x))
    x[rng.random(len(x)) < 0.2, 1] = np.nan  # missing values take the default branch
    signal = x[:, 0] + np.nan_to_num(x[:, 1]) * x[:, 2] + (x[:, 5] == 3)
    y = (signal + rng.normal(size=len(x)) > 0.5).astype(int)
    params = {"objective": "binary", "num_leaves": 15, "verbosity": -1, "seed": 1}
    data = lgb.Dataset(x, y, categorical_feature=[5])
    return lgb.train(params, data, num_boost_round=60), x[:500]


def test_path_contributions__sum_with_the_bias_to_the_raw_margin_of_each_row(
    booster_and_rows: tuple[lgb.Booster, np.ndarray],
) -> None:
    booster, rows = booster_and_rows
    contrib = PathAttribution.from_booster(booster).contributions(booster, rows)
    margin = booster.predict(rows, raw_score=True)
    assert contrib.shape == (len(rows), rows.shape[1] + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), margin, rtol=0, atol=1e-10)


def test_path_contributions__share_treeshaps_bias_and_mostly_its_top_feature(
    booster_and_rows: tuple[lgb.Booster, np.ndarray],
) -> None:
    booster, rows = booster_and_rows
    fast = PathAttribution.from_booster(booster).contributions(booster, rows)
    exact = exact_contributions(booster, rows)
    np.testing.assert_allclose(fast[:, -1], exact[:, -1], atol=1e-10)
    agreement = top_k_agreement(fast, exact, k=3)
    assert agreement["top1"] > 0.7 and agreement["top3"] > 0.7


def test_path_contributions__credit_nothing_to_a_feature_no_tree_splits_on() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2_000, 3))
    x[:, 2] = 0.0  # constant: never split on
    y = (x[:, 0] > 0).astype(int)
    booster = lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(x, y), 20)
    contrib = PathAttribution.from_booster(booster).contributions(booster, x[:50])
    assert np.all(contrib[:, 2] == 0.0) and np.any(contrib[:, 0] != 0.0)


def test_top_k_agreement__counts_shared_features_by_absolute_size() -> None:
    exact = np.array([[3.0, -2.0, 1.0, 0.5, 9.0], [0.1, 0.2, 0.3, -0.4, 9.0]])
    fast = np.array([[-2.5, 3.0, 0.0, 1.0, 9.0], [0.1, 0.2, 0.3, -0.4, 9.0]])
    got = top_k_agreement(fast, exact, k=2)
    assert got["top1"] == 0.5  # row 0: fast says feature 1 first, exact feature 0
    assert got["top2"] == 1.0  # both rows: the same two features
    assert got["sign"] == 0.5  # row 0: both shared features have opposite signs
