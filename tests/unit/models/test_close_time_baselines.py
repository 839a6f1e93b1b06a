"""Close-time baselines against simulated competing exponential times (closed-form
incidence), a hand-computed Aalen–Johansen case, and their input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError

from models import close_time_baselines as B
from models.close_time_baselines import CauseSpecificCox, RepDateBaseline, StageAalenJohansen
from models.competing_risks import CENSORED, LOST, WON, won_time_quantiles

pytestmark = pytest.mark.unit

K = 26
WEEK_ENDS = 7.0 * np.arange(1, K + 1)


def _true_cif(rate_won: float, rate_lost: float, days: np.ndarray) -> tuple[np.ndarray, ...]:
    total = rate_won + rate_lost
    closed = 1.0 - np.exp(-total * days)
    return rate_won / total * closed, rate_lost / total * closed


def _competing(
    rng: np.random.Generator, rate_won: np.ndarray, rate_lost: np.ndarray, censor_mean: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exponential won / lost times per row, independent exponential censoring."""
    won = rng.exponential(1.0 / rate_won)
    lost = rng.exponential(1.0 / rate_lost)
    censor = rng.exponential(censor_mean, len(rate_won))
    time = np.minimum.reduce([won, lost, censor])
    event = np.where(censor <= np.minimum(won, lost), CENSORED, np.where(won < lost, WON, LOST))
    return time, event


@pytest.fixture(scope="module")
def two_stages() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20,000 snapshots: 'proposal' (fast, mostly won) and 'qualification' (slow, mostly
    lost), 10,000 each; 20 'negotiation' rows (too few for their own curve)."""
    rng = np.random.default_rng(11)
    n = 10_000
    stage = np.array(["proposal"] * n + ["qualification"] * n + ["negotiation"] * 20, dtype=object)
    rate_won = np.where(stage == "proposal", 1 / 40, 1 / 150)
    rate_lost = np.where(stage == "proposal", 1 / 120, 1 / 60)
    time, event = _competing(rng, rate_won, rate_lost, censor_mean=250.0)
    return time, event, stage


# --- Aalen–Johansen per stage -----------------------------------------------------------


def test_stage_aalen_johansen__matches_a_hand_computed_case() -> None:
    # given won on day 3, censored on day 5 (at risk all of week 0), lost on day 10,
    # censored on day 20: week 0 h_won = 1/4; week 1 at risk 2, h_lost = 1/2; week 2 none
    model = StageAalenJohansen(horizon_weeks=3, min_rows=1)
    # when
    model.fit([3.0, 5.0, 10.0, 20.0], [WON, CENSORED, LOST, CENSORED], ["a"] * 4)
    won, lost = model.predict_cif(["a"])
    # then
    np.testing.assert_allclose(won[0], [0.25, 0.25, 0.25])
    np.testing.assert_allclose(lost[0], [0.0, 0.375, 0.375])


def test_stage_aalen_johansen__recovers_the_closed_form_incidence_per_stage(
    two_stages: tuple,
) -> None:
    # given
    time, event, stage = two_stages
    # when
    model = StageAalenJohansen(horizon_weeks=K).fit(time, event, stage)
    won, lost = model.predict_cif(["proposal", "qualification"])
    # then every week end is within 0.02 of the truth, for both causes and both stages
    for row, (rate_won, rate_lost) in enumerate([(1 / 40, 1 / 120), (1 / 150, 1 / 60)]):
        true_won, true_lost = _true_cif(rate_won, rate_lost, WEEK_ENDS)
        assert np.abs(won[row] - true_won).max() < 0.02
        assert np.abs(lost[row] - true_lost).max() < 0.02
    # and the stages differ clearly
    assert won[0, 12] - won[1, 12] > 0.4
    assert lost[1, 12] - lost[0, 12] > 0.3


def test_stage_aalen_johansen__pools_rare_missing_and_unseen_stages(two_stages: tuple) -> None:
    time, event, stage = two_stages
    model = StageAalenJohansen(horizon_weeks=K, min_rows=50).fit(time, event, stage)
    pooled = StageAalenJohansen(horizon_weeks=K).fit(time, event, np.full(len(time), "any"))
    won, lost = model.predict_cif(["negotiation", None, np.nan, "closed_lost", "proposal"])
    expected_won, expected_lost = pooled.predict_cif(["any"])
    for row in range(4):
        np.testing.assert_allclose(won[row], expected_won[0])
        np.testing.assert_allclose(lost[row], expected_lost[0])
    assert not np.allclose(won[4], expected_won[0])
    assert model.counts_["negotiation"] == 20
    assert "negotiation" not in model.curves_


def test_stage_aalen_johansen__rejects_bad_inputs_and_predict_before_fit() -> None:
    model = StageAalenJohansen()
    with pytest.raises(ValueError, match="before fit"):
        model.predict_cif(["proposal"])
    with pytest.raises(ValueError, match="row 1 holds 3"):
        model.fit([1.0, 2.0], [WON, 3], ["a", "a"])
    with pytest.raises(ValueError, match="same length"):
        model.fit([1.0, 2.0], [WON], ["a", "a"])
    with pytest.raises(ValueError, match="stage has 1 values for 2 rows"):
        model.fit([1.0, 2.0], [WON, LOST], ["a"])
    with pytest.raises(ValueError, match=">= 0"):
        model.fit([-1.0, 2.0], [WON, LOST], ["a", "a"])


# --- cause-specific Cox -----------------------------------------------------------------


def _cox_data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Won hazard (1/60) exp(0.8 x); lost hazard 1/90 whatever x; some noise columns,
    a column with missing values, a categorical with a rare level."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "x": x,
            "noise": rng.normal(size=n),
            "constant": np.ones(n),
            "gappy": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "product": rng.choice(
                np.array(["a", "b", "c", "rare"], dtype=object), n, p=[0.5, 0.3, 0.195, 0.005]
            ),
        }
    )
    time, event = _competing(rng, np.exp(0.8 * x) / 60, np.full(n, 1 / 90), censor_mean=300.0)
    return frame, np.ceil(time), event  # whole days: ties, as in the CRM data


@pytest.fixture(scope="module")
def cox() -> CauseSpecificCox:
    frame, time, event = _cox_data(4000, seed=3)
    return CauseSpecificCox(horizon_weeks=K).fit(frame, time, event)


def test_cause_specific_cox__recovers_the_covariate_effect(cox: CauseSpecificCox) -> None:
    # given rows equal but for x
    rows = pd.DataFrame(
        {"x": [-1.0, 0.0, 1.0], "noise": 0.0, "constant": 1.0, "gappy": 0.0, "product": "a"}
    )
    # when
    won, lost = cox.predict_cif(rows)
    # then higher x wins sooner and more often, at every week
    assert (np.diff(won, axis=0) > 0).all()
    # and the won coefficient per standard deviation of x is near 0.8; lost ignores x
    assert cox.coefficients_["won"]["x"] == pytest.approx(0.8, abs=0.15)
    assert abs(cox.coefficients_["lost"]["x"]) < 0.15
    # and the x = 0 row is near the closed-form incidence of the two constant hazards
    true_won, true_lost = _true_cif(1 / 60, 1 / 90, WEEK_ENDS)
    assert np.abs(won[1] - true_won).max() < 0.05
    assert np.abs(lost[1] - true_lost).max() < 0.05


def test_cause_specific_cox__curves_are_monotone_and_bounded(cox: CauseSpecificCox) -> None:
    frame, _, _ = _cox_data(1000, seed=4)
    frame.loc[:10, "product"] = "never_seen"
    frame.loc[10:20, "gappy"] = np.nan
    won, lost = cox.predict_cif(frame)
    assert won.shape == lost.shape == (1000, K)
    assert (np.diff(won, axis=1) >= -1e-12).all()
    assert (np.diff(lost, axis=1) >= -1e-12).all()
    assert (won >= 0).all() and (lost >= 0).all()
    assert (won + lost <= 1 + 1e-9).all()


def test_cause_specific_cox__preprocesses_on_training_rows_only(cox: CauseSpecificCox) -> None:
    names = cox.design_.names_
    assert "constant" not in names  # constant dropped
    assert "gappy__missing" in names and "x__missing" not in names
    # 'rare' (≈ 20 rows) falls into "other"; the most frequent level 'a' is the reference
    assert {n for n in names if n.startswith("product=")} == {
        "product=b",
        "product=c",
        "product=other",
    }


def test_cause_specific_cox__subsamples_and_retries_with_a_larger_penalizer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a lifelines that fails to converge at the configured penalizer
    class Flaky(CoxPHFitter):
        def fit(self, *args: object, **kwargs: object) -> CoxPHFitter:
            if self.penalizer < 0.05:
                raise ConvergenceError("delta contains nan value(s)")
            return super().fit(*args, **kwargs)

    monkeypatch.setattr(B, "CoxPHFitter", Flaky)
    frame, time, event = _cox_data(1500, seed=5)
    # when
    model = CauseSpecificCox(penalizer=0.01, max_rows=1000).fit(frame, time, event)
    # then both causes were refitted with 0.1, and the notes say so and name the subsample
    assert model.penalizers_ == {"won": 0.1, "lost": 0.1}
    assert model.n_fit_rows_ == 1000
    assert any("1000 of 1500" in note for note in model.notes)
    assert sum("refitted with penalizer 0.1" in note for note in model.notes) == 2
    assert model.predict_cif(frame)[0].shape == (1500, K)


def test_cause_specific_cox__rejects_bad_inputs_and_predict_before_fit() -> None:
    frame, time, event = _cox_data(200, seed=6)
    with pytest.raises(ValueError, match="before fit"):
        CauseSpecificCox().predict_cif(frame)
    with pytest.raises(ValueError, match="199 rows for 200"):
        CauseSpecificCox().fit(frame.iloc[1:], time, event)
    with pytest.raises(ValueError, match="event must be"):
        CauseSpecificCox().fit(frame, time, np.where(event == LOST, 5, event))
    fitted = CauseSpecificCox().fit(frame, time, event)
    with pytest.raises(ValueError, match="lacks column"):
        fitted.predict_cif(frame.drop(columns="x"))


# --- the rep's expected close date -------------------------------------------------------


@pytest.fixture(scope="module")
def rep_data() -> tuple[np.ndarray, ...]:
    """Won deals close ≈ 10 days (sd 4) after the rep's date (today if overdue); a third
    are lost at random times; 10% have no date."""
    rng = np.random.default_rng(8)
    n = 6000
    stage = rng.choice(np.array(["proposal", "negotiation"], dtype=object), n)
    days_to = rng.uniform(-20, 120, n).round()
    won_time = np.maximum(days_to, 0) + np.maximum(rng.normal(10, 4, n), 0.5)
    lost_time = rng.exponential(150, n)
    will_win = rng.random(n) < np.where(stage == "negotiation", 0.8, 0.5)
    time = np.where(will_win, won_time, lost_time)
    event = np.where(will_win, WON, LOST)
    censor = rng.uniform(60, 400, n)
    event = np.where(censor < time, CENSORED, event)
    time = np.minimum(time, censor)
    days_to[rng.random(n) < 0.1] = np.nan
    return time, event, stage, days_to


def test_rep_date__an_earlier_date_wins_earlier_and_a_missing_date_takes_the_stage_curve(
    rep_data: tuple,
) -> None:
    time, event, stage, days_to = rep_data
    model = RepDateBaseline(horizon_weeks=K).fit(time, event, stage, days_to)
    stage_won, stage_lost = model.stage_model_.predict_cif(["proposal"] * 3)
    won, lost = model.predict_cif(["proposal"] * 3, [5.0, 90.0, np.nan])
    # an earlier rep date → more won by the early weeks, same win probability in the end
    assert (won[0, :10] > won[1, :10]).all()
    assert won[0, 2] > 0.9 * stage_won[0, -1] and won[1, 2] == 0.0
    assert won[0, -1] == pytest.approx(stage_won[0, -1])
    # no date → the stage's curves
    np.testing.assert_allclose(won[2], stage_won[2])
    np.testing.assert_allclose(lost[2], stage_lost[2])
    assert (np.diff(won, axis=1) >= 0).all() and (won + lost <= 1 + 1e-12).all()


def test_rep_date__median_won_days_is_the_date_plus_its_typical_error(rep_data: tuple) -> None:
    time, event, stage, days_to = rep_data
    model = RepDateBaseline(horizon_weeks=K).fit(time, event, stage, days_to)
    assert model.median_error_ == pytest.approx(10.0, abs=1.0)
    median = model.median_won_days([30.0, -15.0, np.nan])
    np.testing.assert_allclose(median[:2], [30.0 + model.median_error_, model.median_error_])
    assert np.isnan(median[2])
    # and the curve's own median won day agrees within the weekly grid's resolution
    won, _ = model.predict_cif(["negotiation"], [30.0])
    assert won_time_quantiles(won, [0.5])[0, 0] == pytest.approx(40.0, abs=3.5)


def test_rep_date__rejects_bad_inputs_and_predict_before_fit(rep_data: tuple) -> None:
    time, event, stage, days_to = rep_data
    model = RepDateBaseline()
    with pytest.raises(ValueError, match="before fit"):
        model.predict_cif(["proposal"], [3.0])
    with pytest.raises(ValueError, match="before fit"):
        model.median_won_days([3.0])
    with pytest.raises(ValueError, match="days_to_expected has 3 values"):
        model.fit(time, event, stage, days_to[:3])
    fitted = model.fit(time, event, stage, days_to)
    with pytest.raises(ValueError, match="days_to_expected has 1 values for 2 rows"):
        fitted.predict_cif(["proposal", "proposal"], [3.0])
    with pytest.raises(ValueError, match="no training row was won"):
        RepDateBaseline().fit([10.0, 20.0], [LOST, WON], ["a", "a"], [np.nan, np.nan])


def test_cox_without_any_lost_event_fits_a_zero_lost_hazard() -> None:
    """CRMs that never record a loss (Olist): the won model still fits, lost stays zero."""
    features, time, event = _cox_data(3000, seed=4)
    event = np.where(event == LOST, CENSORED, event)
    cox = CauseSpecificCox(horizon_weeks=10).fit(features, time, event)
    cif_won, cif_lost = cox.predict_cif(features.iloc[:50])
    assert np.all(cif_lost == 0.0) and np.all(cif_won[:, -1] > 0.0)
    assert any("no lost event" in note for note in cox.notes)
