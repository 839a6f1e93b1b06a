"""Train and evaluate the deal close-time model on a CRM history, beside its baselines.

Pure logic (no files, no MLflow): tables in, a :class:`CloseTimeRun` out. Every metric is
computed on the held-out test snapshots (the most recent months whose 90-day window is
complete); the baselines — Aalen–Johansen per stage (the stage-weighted view, reported as
``km_stage``), cause-specific Cox on the same features, and the rep's own expected close
date — are fitted on the same training snapshots with the same censoring and scored on
exactly the same test rows. With the generator's truth an oracle block scores the true
laws on those rows, conditioned on each deal being open in its observed stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from data_contracts import tables as T
from data_contracts.spec import Column
from features.deal_features import OwnerDealHistory, build_close_time_features
from models.close_time import (
    HORIZONS,
    QUANTILES,
    CloseTimeModel,
    CloseTimeSettings,
    Outlook,
    fit_close_time,
)
from models.close_time_baselines import CauseSpecificCox, RepDateBaseline, StageAalenJohansen
from models.competing_risks import WEEK_DAYS, WON, curve_at, won_time_quantiles
from models.conversion_training import NotEnoughDataError, data_end_of
from models.deal_snapshots import (
    EVENT,
    TIME,
    DealSnapshotSettings,
    DealWindows,
    deal_windows,
    split_snapshots,
)
from models.risk_flags import RiskFlagConfig, fit_stage_dwell, load_risk_flag_config
from models.survival_metrics import brier_difference, concordance_index_won, survival_report
from models.true_laws import true_laws

SCORERS_NOTE = (
    "km_stage: Aalen–Johansen (competing-risks Kaplan–Meier) per current stage; "
    "cox: cause-specific Cox (won, lost) on the same features; rep_date: stage win "
    "probability timed by the rep's expected close date and its historical error"
)


class CloseTimeTrainingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    snapshots: DealSnapshotSettings = DealSnapshotSettings()
    model: CloseTimeSettings = CloseTimeSettings()
    min_won_deals: int = Field(default=100, ge=1)
    baselines: bool = True
    compare_naive: bool = Field(
        default=False, description="also train with open deals counted as lost, to report it"
    )


@dataclass
class CloseTimeRun:
    """A trained model and its report (all metrics on the same test rows)."""

    model: CloseTimeModel
    windows: DealWindows
    counts: dict[str, Any]
    report: dict[str, Any]
    test_frame: pd.DataFrame
    test_features: pd.DataFrame
    test_outlook: Outlook
    baseline_curves: dict[str, np.ndarray] = field(default_factory=dict)
    feature_importance: dict[str, float] = field(default_factory=dict)


def evaluate_curves(
    test: pd.DataFrame,
    cif_won: np.ndarray,
    *,
    p_won: dict[int, np.ndarray] | None = None,
    median_won_days: np.ndarray | None = None,
    horizon_weeks: int,
) -> dict[str, Any]:
    """Survival metrics of one scorer's won curves on the test snapshots. ``p_won``
    overrides the curve's P(won within h) (the model's calibrated values); the c-index
    ranks by the won incidence at the horizon; the median close date defaults to the
    curve's conditional median."""
    probs = p_won or {h: curve_at(cif_won, float(h)) for h in HORIZONS}
    if median_won_days is None:
        median_won_days = won_time_quantiles(cif_won, [0.5])[:, 0]
    tau = horizon_weeks * WEEK_DAYS
    return survival_report(
        test[TIME].to_numpy(),
        test[EVENT].to_numpy(),
        probs,
        score=cif_won[:, -1],
        median_won_days=median_won_days,
        tau_days=tau,
    )


def _stage_of(features: pd.DataFrame) -> np.ndarray:
    return features["current_stage"].to_numpy(dtype=object)


def train_and_evaluate_close_time(
    tables: dict[str, pd.DataFrame],
    *,
    deal_custom: list[Column],
    lead_custom: list[Column],
    settings: CloseTimeTrainingSettings,
    truth_deals: pd.DataFrame | None = None,
    data_end: pd.Timestamp | None = None,
    flag_config: RiskFlagConfig | None = None,
) -> CloseTimeRun:
    """Snapshots → split → features → weekly hazards + calibration → test metrics.

    Raises :class:`NotEnoughDataError` when the training snapshots hold fewer won deals than
    ``settings.min_won_deals`` or a part of the split is empty."""
    deals = tables["deals"]
    end = data_end if data_end is not None else data_end_of(tables)
    windows = deal_windows(end, settings.snapshots)
    parts = split_snapshots(deals, windows, settings.snapshots)
    won = int(parts["train"].loc[parts["train"][EVENT] == WON, T.DEAL_ID].nunique())
    counts: dict[str, Any] = {
        "snapshots": {k: len(v) for k, v in parts.items()},
        "events": {
            k: {
                name: int((v[EVENT] == code).sum())
                for code, name in ((0, "censored"), (1, "won"), (2, "lost"))
            }
            for k, v in parts.items()
        },
        "won_deals_in_training": won,
        "deals": len(deals),
    }
    if won < settings.min_won_deals or min(len(v) for v in parts.values()) == 0:
        raise NotEnoughDataError(
            f"only {won} won deals in the training snapshots (before "
            f"{windows.validation_start.date()}); at least {settings.min_won_deals} are "
            f"needed, and validation/test need snapshots too (have {counts['snapshots']}). "
            "No close-time model is registered. Add history or lower --min-won."
        )
    flag_config = flag_config or load_risk_flag_config()
    owner_deals = OwnerDealHistory.from_deals(deals)

    def feats(frame: pd.DataFrame) -> pd.DataFrame:
        return build_close_time_features(
            frame,
            leads=tables["leads"],
            stage_history=tables["stage_history"],
            activities=tables["activities"],
            owner_deals=owner_deals,
            deal_custom=deal_custom,
            lead_custom=lead_custom,
        )

    x = {k: feats(v) for k, v in parts.items()}
    horizon = settings.snapshots.horizon_weeks
    dwell = fit_stage_dwell(deals, tables["stage_history"], before=end, config=flag_config)

    def fit(naive: bool = False) -> Any:
        return fit_close_time(
            x["train"],
            parts["train"][TIME].to_numpy(),
            parts["train"][EVENT].to_numpy(),
            x["validation"],
            parts["validation"][TIME].to_numpy(),
            parts["validation"][EVENT].to_numpy(),
            owner_deals=owner_deals.aggregate(end),
            dwell=dwell,
            flag_config=flag_config,
            deal_custom=deal_custom,
            lead_custom=lead_custom,
            horizon_weeks=horizon,
            settings=settings.model,
            naive_open_as_lost=naive,
        )

    fitted = fit()
    model = fitted.model
    acts = tables["activities"]
    if not acts[T.DEAL_ID].notna().any():
        model.flags_disabled.append("silent")  # the export records no work on deals at all
    model.meta |= {"windows": windows.to_dict(), "counts": counts}
    test = parts["test"]
    outlook = model.outlook(model.encoder.transform(x["test"]))
    report: dict[str, Any] = evaluate_curves(
        test,
        outlook.cif_won,
        p_won=outlook.p_won,
        median_won_days=outlook.won_days_quantiles[:, 1],
        horizon_weeks=horizon,
    )
    report["calibration"] = fitted.calibration_report
    report["best_iteration"] = fitted.best_iteration
    curves: dict[str, np.ndarray] = {}
    if settings.baselines:
        report["baselines"], curves = _baselines(parts, x, horizon)
        report["baselines_note"] = SCORERS_NOTE
        # is the model's edge real? paired, deal-clustered bootstrap of the Brier gap
        report["brier_90d_vs_baselines"] = {
            name: brier_difference(
                test[TIME].to_numpy(),
                test[EVENT].to_numpy(),
                outlook.p_won[90],
                curve_at(cif, 90.0),
                90.0,
                test[T.DEAL_ID].to_numpy(),
            )
            for name, cif in curves.items()
        }
    if truth_deals is not None:
        report["oracle"], ok_test = _oracle(test, x["test"], truth_deals, horizon)
        report["oracle"]["observable_ceiling_c_index"] = _observable_ceiling(
            parts, x, model, truth_deals, horizon, ok_test
        )
    if settings.compare_naive:
        naive = fit(naive=True).model
        naive_outlook = naive.outlook(naive.encoder.transform(x["test"]))
        report["naive_open_as_lost"] = evaluate_curves(
            test, naive_outlook.cif_won, p_won=naive_outlook.p_won, horizon_weeks=horizon
        )
    report["risk_flags"] = _flag_report(model, test, x["test"], outlook)
    report["windows"] = windows.to_dict()
    report["counts"] = counts
    return CloseTimeRun(
        model=model,
        windows=windows,
        counts=counts,
        report=report,
        test_frame=test,
        test_features=x["test"],
        test_outlook=outlook,
        baseline_curves=curves,
        feature_importance=fitted.feature_importance,
    )


def _baselines(
    parts: dict[str, pd.DataFrame], x: dict[str, pd.DataFrame], horizon: int
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Each baseline fitted on the training snapshots, scored on the test snapshots."""
    train, test = parts["train"], parts["test"]
    t, e = train[TIME].to_numpy(), train[EVENT].to_numpy()
    out: dict[str, Any] = {}
    curves: dict[str, np.ndarray] = {}
    km = StageAalenJohansen(horizon_weeks=horizon).fit(t, e, _stage_of(x["train"]))
    curves["km_stage"], _ = km.predict_cif(_stage_of(x["test"]))
    cox = CauseSpecificCox(horizon_weeks=horizon).fit(x["train"], t, e)
    curves["cox"], _ = cox.predict_cif(x["test"])
    days_to = x["test"]["days_to_expected_close"].to_numpy()
    rep: RepDateBaseline | None = None
    try:
        rep = RepDateBaseline(horizon_weeks=horizon).fit(
            t, e, _stage_of(x["train"]), x["train"]["days_to_expected_close"].to_numpy()
        )
        curves["rep_date"], _ = rep.predict_cif(_stage_of(x["test"]), days_to)
    except ValueError as exc:  # e.g. a CRM export without expected close dates
        out["rep_date"] = {"skipped": str(exc)}
    for name, cif in curves.items():
        median = rep.median_won_days(days_to) if name == "rep_date" and rep else None
        out[name] = evaluate_curves(test, cif, median_won_days=median, horizon_weeks=horizon)
    if cox.notes:
        out["cox"]["notes"] = list(cox.notes)
    return out, curves


def oracle_curves(
    features: pd.DataFrame, deal_ids: pd.Series, truth_deals: pd.DataFrame, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """The true won incidence on the weekly grid for each row whose deal is in the truth
    and open in a known stage (others: NaN rows), and the mask of rows it applies to."""
    laws = true_laws(deal_ids, _stage_of(features), truth_deals)
    cif = np.column_stack([laws.won_within((k + 1) * WEEK_DAYS) for k in range(horizon)])
    return cif, laws.known


def _oracle(
    test: pd.DataFrame, features: pd.DataFrame, truth_deals: pd.DataFrame, horizon: int
) -> tuple[dict[str, Any], np.ndarray]:
    """The truth's laws scored like every other scorer, on the test rows they apply to
    (returned as a mask beside the metrics)."""
    cif, ok = oracle_curves(features, test[T.DEAL_ID], truth_deals, horizon)
    rows = test[ok].reset_index(drop=True)
    out = evaluate_curves(rows, cif[ok], horizon_weeks=horizon)
    out["rows_without_truth"] = int((~ok).sum())
    return out, ok


def _observable_ceiling(
    parts: dict[str, pd.DataFrame],
    x: dict[str, pd.DataFrame],
    model: CloseTimeModel,
    truth_deals: pd.DataFrame,
    horizon: int,
    ok_test: np.ndarray,
) -> float:
    """How well *any* model of these features could rank: a regression of the oracle's own
    won incidence at the horizon (logit) on the model's features, fitted on the training
    snapshots and scored by the c-index on the test rows. The gap between this and the
    oracle is information the data does not show (the truth's hidden deal traits); the gap
    between the model and this is the model's to close. Generated data only."""
    import lightgbm as lgb

    cif, ok_train = oracle_curves(x["train"], parts["train"][T.DEAL_ID], truth_deals, horizon)
    p = np.clip(cif[:, -1], 1e-6, 1 - 1e-6)
    y_train = np.log(p / (1 - p))
    enc = model.encoder
    booster = lgb.train(
        {
            "objective": "regression",
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_data_in_leaf": 100,
            "num_threads": 2,
            "seed": 7,
            "deterministic": True,
            "verbosity": -1,
        },
        lgb.Dataset(
            enc.transform(x["train"][ok_train]),
            y_train[ok_train],
            categorical_feature=enc.categorical_indices,
        ),
        num_boost_round=600,
    )
    test = parts["test"][ok_test]
    score = booster.predict(enc.transform(x["test"][ok_test]))
    return concordance_index_won(
        test[TIME].to_numpy(), test[EVENT].to_numpy(), score, tau_days=horizon * WEEK_DAYS
    )


def same_stage_comparison(
    flagged: np.ndarray, hit: np.ndarray, stage: np.ndarray
) -> dict[str, Any] | None:
    """Flagged deals against the *unflagged* deals of their own stage (indirect
    standardisation), on the same deals: ``rate_flagged`` is the flagged deals' outcome
    rate and ``rate_unflagged`` the rate they would have had at their stage's unflagged
    rate. Flagged deals without a stage, or in a stage with no unflagged deal, have no
    peers and are left out of both (``n`` counts the deals kept); None when none is left.

    Why: flags gather in some stages (a deal is only "slipped" or "stalled" once it is old,
    and old open deals sit in later stages, which win more often), so the flagged-vs-not
    rates compare different stage mixes. A flag that marks weaker deals *within* every
    stage can still show a higher raw rate than the unflagged ones (Simpson's paradox);
    this is the like-for-like comparison."""
    frame = pd.DataFrame({"stage": stage, "flagged": flagged, "hit": hit})
    peers = frame.loc[~frame["flagged"]].groupby("stage")["hit"].mean()
    mine = frame.loc[frame["flagged"]]
    expected = mine["stage"].map(peers)
    kept = expected.notna()
    if not kept.any():
        return None
    return {
        "n": int(kept.sum()),
        "rate_flagged": float(mine.loc[kept, "hit"].mean()),
        "rate_unflagged": float(expected[kept].mean()),
    }


def _flag_report(
    model: CloseTimeModel, test: pd.DataFrame, features: pd.DataFrame, outlook: Outlook
) -> dict[str, Any]:
    """How often each flag fires on the test snapshots and how those deals fared, flagged
    vs not: the share won within 90 days, and for ``unlikely_by_expected_date`` (a claim
    about the date, not the deal) the share won by the rep's expected date; beside them,
    the same-stage comparison (:func:`same_stage_comparison`), which is the one that says
    whether a flag marks weaker deals."""
    days_to = features["days_to_expected_close"].to_numpy(np.float64)
    stage = _stage_of(features)
    flags = model.flags(features, outlook.won_by_expected(days_to))
    won, time = (test[EVENT] == WON).to_numpy(), test[TIME].to_numpy(np.float64)
    outcomes = {
        "won_90d": won & (time <= 90),
        "won_by_expected_date": won & (time <= np.nan_to_num(days_to, nan=-1.0)),
    }
    out: dict[str, Any] = {}
    for code in sorted({f.code for row in flags for f in row}):
        has = np.array([any(f.code == code for f in row) for row in flags], dtype=bool)
        measure = "won_by_expected_date" if code == "unlikely_by_expected_date" else "won_90d"
        hit = outcomes[measure]
        if measure == "won_by_expected_date":  # only deals whose date was still ahead
            ahead = np.nan_to_num(days_to, nan=-1.0) >= 0
            has, hit, in_stage = has[ahead], hit[ahead], stage[ahead]
        else:
            in_stage = stage
        out[code] = {
            "n": int(has.sum()),
            "share": float(has.mean()) if len(has) else 0.0,
            "outcome": measure,
            "rate_flagged": float(hit[has].mean()) if has.any() else None,
            "rate_unflagged": float(hit[~has].mean()) if (~has).any() else None,
            "same_stage": same_stage_comparison(has, hit, in_stage),
        }
    return out


__all__ = [
    "QUANTILES",
    "CloseTimeRun",
    "CloseTimeTrainingSettings",
    "evaluate_curves",
    "oracle_curves",
    "same_stage_comparison",
    "train_and_evaluate_close_time",
]
