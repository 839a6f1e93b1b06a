"""The close-time model on a known law: censoring honoured, curves coherent, bundle exact.

Deals with one feature (``amount``) win and are lost at constant, known daily rates, so
the true P(won within t) has a closed form. Training follow-up is heavily censored; the
test rows are not. The model, which treats open deals as censored, must recover the truth;
the same model trained the naive way (open deals counted as lost) must be measurably
worse calibrated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.deal_features import OwnerDealHistory, close_time_feature_encoder
from models.close_time import CloseTimeModel, CloseTimeSettings, fit_close_time
from models.competing_risks import CENSORED, LOST, WON
from models.metrics import expected_calibration_error
from models.risk_flags import RiskFlagConfig, StageDwell

pytestmark = pytest.mark.unit

HORIZON_WEEKS = 26


def won_rate(x: np.ndarray) -> np.ndarray:
    return (0.004 + 0.016 * x) * np.ones_like(x)  # per day


LOST_RATE = 0.006


def true_won_within(x: np.ndarray, days: float) -> np.ndarray:
    w, total = won_rate(x), won_rate(x) + LOST_RATE
    return w / total * (1.0 - np.exp(-total * days))


def simulate(
    rng: np.random.Generator, n: int, censor_max_days: float | None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Feature frame (every model column, only ``amount`` and the stage informative),
    follow-up times, events and x."""
    x = rng.uniform(0.0, 1.0, n)
    t_won = rng.exponential(1.0 / won_rate(x))
    t_lost = rng.exponential(1.0 / LOST_RATE, n)
    time = np.minimum(t_won, t_lost)
    event = np.where(t_won < t_lost, WON, LOST)
    if censor_max_days is not None:
        censor = rng.uniform(0.0, censor_max_days, n)
        cut = censor < time
        time = np.where(cut, censor, time)
        event = np.where(cut, CENSORED, event)
    encoder = close_time_feature_encoder()
    frame = pd.DataFrame({c: np.full(n, np.nan) for c in encoder.numeric})
    for c in encoder.categorical:
        frame[c] = pd.Series([None] * n, dtype=object)
    frame["amount"] = x * 1e6
    frame["current_stage"] = pd.Series(["proposal"] * n, dtype=object)
    return frame, np.maximum(time, 1e-3), event.astype(np.int8), x


def fit(naive: bool, seed: int = 5) -> tuple[CloseTimeModel, tuple]:
    rng = np.random.default_rng(seed)
    train = simulate(rng, 8000, censor_max_days=120.0)  # about half censored
    valid = simulate(rng, 3000, censor_max_days=None)
    test = simulate(rng, 6000, censor_max_days=None)
    fitted = fit_close_time(
        train[0], train[1], train[2], valid[0], valid[1], valid[2],
        owner_deals=OwnerDealHistory.from_deals(_no_deals()),
        dwell=StageDwell(quantile=0.9, before=pd.Timestamp("2026-01-01")),
        flag_config=RiskFlagConfig(),
        deal_custom=[], lead_custom=[],
        horizon_weeks=HORIZON_WEEKS,
        settings=CloseTimeSettings(min_leaf_share=0.002, max_rounds=400),
        naive_open_as_lost=naive,
    )  # fmt: skip
    return fitted.model, test


def _no_deals() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "owner_id": pd.Series([], dtype=object),
            "created_at": pd.Series([], dtype="datetime64[us]"),
            "closed_at": pd.Series([], dtype="datetime64[us]"),
            "outcome": pd.Series([], dtype=object),
        }
    )


@pytest.fixture(scope="module")
def honest() -> tuple[CloseTimeModel, tuple]:
    return fit(naive=False)


@pytest.fixture(scope="module")
def naive() -> tuple[CloseTimeModel, tuple]:
    return fit(naive=True)


def test_censored_training_recovers_the_true_law(honest) -> None:
    model, (frame, _, _, x) = honest
    out = model.outlook(model.encoder.transform(frame))
    for h in (30, 60, 90):
        truth = true_won_within(x, float(h))
        assert np.mean(out.p_won[h]) == pytest.approx(np.mean(truth), abs=0.02)
        assert np.mean(np.abs(out.p_won[h] - truth)) < 0.03


def test_counting_open_deals_as_lost_is_measurably_worse(honest, naive) -> None:
    """The naive model under-predicts wins; ours does not (same data, same settings)."""
    results = {}
    for name, (model, (frame, time, event, _)) in (("honest", honest), ("naive", naive)):
        p90 = model.outlook(model.encoder.transform(frame)).p_won[90]
        y90 = ((event == WON) & (time <= 90)).astype(float)
        results[name] = (abs(p90.mean() - y90.mean()), expected_calibration_error(y90, p90))
    (bias_h, ece_h), (bias_n, ece_n) = results["honest"], results["naive"]
    # measured: honest bias 0.004, ECE 0.03 (10 bins on 6,000 rows); naive 0.16 and 0.16
    assert bias_h < 0.02 and ece_h < 0.05
    assert bias_n > 0.1 and ece_n > 3 * ece_h


def test_curves_are_coherent(honest) -> None:
    model, (frame, *_rest) = honest
    out = model.outlook(model.encoder.transform(frame.iloc[:500]))
    assert np.all(out.p_won[30] <= out.p_won[60]) and np.all(out.p_won[60] <= out.p_won[90])
    assert np.all(out.p_won[90] <= out.p_win + 1e-12)
    assert np.all(out.cif_won + out.cif_lost <= 1 + 1e-9)
    assert np.all(np.diff(out.cif_won, axis=1) >= -1e-12)
    q = out.won_days_quantiles
    assert np.all((q[:, 0] <= q[:, 1]) & (q[:, 1] <= q[:, 2]))
    assert np.all(q[:, 2] <= HORIZON_WEEKS * 7 + 1e-9)


def test_more_likely_winners_rank_higher(honest) -> None:
    model, (frame, _, _, x) = honest
    out = model.outlook(model.encoder.transform(frame))
    assert np.corrcoef(out.p_win, x)[0, 1] > 0.9


def test_bundle_round_trip_scores_identically(honest, tmp_path: Path) -> None:
    model, (frame, *_rest) = honest
    model.save(tmp_path / "b", metrics={"c_index": 0.7}, fingerprint={"rows": 1})
    loaded = CloseTimeModel.load(tmp_path / "b")
    a = model.outlook(model.encoder.transform(frame.iloc[:300]))
    b = loaded.outlook(loaded.encoder.transform(frame.iloc[:300]))
    for h in (30, 60, 90):
        np.testing.assert_array_equal(a.p_won[h], b.p_won[h])
    np.testing.assert_array_equal(a.won_days_quantiles, b.won_days_quantiles)
    assert not any(p.suffix in (".pkl", ".pickle") for p in (tmp_path / "b").iterdir())


def test_loading_another_kind_of_bundle_is_refused(tmp_path: Path) -> None:
    import lightgbm as lgb

    from models.bundle import load_bundle, save_bundle

    booster = lgb.train(
        {"objective": "binary", "verbosity": -1},
        lgb.Dataset(np.random.default_rng(0).normal(size=(50, 2)), label=[0, 1] * 25),
        num_boost_round=2,
    )
    save_bundle(tmp_path / "c", kind="lead-conversion", boosters={"booster": booster}, payload={})
    with pytest.raises(ValueError, match="not 'deal-close-time'"):
        CloseTimeModel.from_bundle(load_bundle(tmp_path / "c"))
