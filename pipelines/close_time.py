"""Orchestration of the deal close-time model: train → MLflow → registry, and outlooks.

``train_close_time`` reads a validated dataset directory, trains and evaluates
(``models.close_time_training``), writes the bundle, logs the run to MLflow, registers a
``deal-close-time`` version and moves the champion alias only when the new version beats
the champion on the same test rows. ``outlook`` scores the deals open at a date with a
registered version.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.deal_features import OwnerDealHistory, build_close_time_features
from models import registry as R
from models.bundle import fingerprint_frames
from models.close_time import KIND, CloseTimeModel, open_deals_at
from models.close_time_training import (
    CloseTimeTrainingSettings,
    evaluate_curves,
    train_and_evaluate_close_time,
)
from models.competing_risks import WON, curve_at
from models.conversion_training import NotEnoughDataError
from models.deal_snapshots import EVENT, TIME
from models.plots import feature_importance_chart, reliability_diagram
from pipelines.registered import load_registered
from pipelines.training import Progress, TrainOutcome, load_dataset, numeric_metrics, read_truth

#: What ``train close-time --json`` reports at the top level (besides the outcome fields).
HEADLINE = ("c_index", "brier_90d", "ece_90d", "median_close_mae_days")


def _headline(block: dict[str, Any]) -> dict[str, Any]:
    return {k: block.get(k) for k in (*HEADLINE, "brier_30d", "brier_60d", "ece_30d", "ece_60d")}


def flat_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The headline metrics under the names the CLI documents."""
    out: dict[str, Any] = _headline(report)
    out["n_test"] = report.get("n")
    out["baselines"] = {
        k: ({"skipped": v["skipped"]} if "skipped" in v else _headline(v))
        for k, v in report.get("baselines", {}).items()
    }
    if "oracle" in report:
        oracle = report["oracle"]
        out["oracle"] = {k: oracle.get(k) for k in HEADLINE} | {
            "n": oracle.get("n"),
            "observable_ceiling_c_index": oracle.get("observable_ceiling_c_index"),
        }
    if "naive_open_as_lost" in report:
        out["naive_open_as_lost"] = _headline(report["naive_open_as_lost"])
    if "brier_90d_vs_baselines" in report:
        out["brier_90d_vs_baselines"] = report["brier_90d_vs_baselines"]
    out["risk_flags"] = report.get("risk_flags", {})
    return out


def _custom(manifest: Any) -> tuple[list[Any], list[Any]]:
    contract = manifest.contract()
    return list(contract["deals"].custom_columns), list(contract["leads"].custom_columns)


def train_close_time(
    data_dir: Path,
    *,
    registry: R.RegistrySettings,
    settings: CloseTimeTrainingSettings | None = None,
    progress: Progress = lambda _msg: None,
) -> TrainOutcome:
    """Train, evaluate, log, register and (maybe) promote a deal close-time model."""
    settings = settings or CloseTimeTrainingSettings()
    progress("validating and loading the data")
    tables, manifest, _, data_end, contract_summary = load_dataset(data_dir)
    truth = read_truth(Path(data_dir), manifest, "deals")
    deal_custom, lead_custom = _custom(manifest)
    progress("building deal snapshots and features, training the hazards and the baselines")
    try:
        run = train_and_evaluate_close_time(
            tables,
            deal_custom=deal_custom,
            lead_custom=lead_custom,
            settings=settings,
            truth_deals=truth,
            data_end=data_end,
        )
    except NotEnoughDataError as exc:
        return TrainOutcome(trained=False, message=str(exc))
    report = run.report
    fingerprint = fingerprint_frames(
        {k: tables[k] for k in ("deals", "stage_history", "activities")},
        window=(
            pd.Timestamp(tables["deals"]["created_at"].min()).to_pydatetime(),
            run.windows.validation_start.to_pydatetime(),
        ),
    )
    progress("logging the run to MLflow and registering the bundle")
    test = run.test_frame
    y90 = ((test[EVENT] == WON) & (test[TIME] <= 90)).to_numpy().astype(np.float64)
    names = run.model.feature_names
    plots = {
        "reliability_90d": reliability_diagram(
            y90,
            run.test_outlook.p_won[90],
            baselines={k: curve_at(v, 90.0) for k, v in run.baseline_curves.items()},
            title="Reliability of P(won within 90 days)",
            observed="Observed share won within 90 days",
        ),
        "feature_importance": feature_importance_chart(
            names, [run.feature_importance[n] for n in names]
        ),
    }
    with tempfile.TemporaryDirectory(prefix="leadcast-bundle-") as tmp:
        bundle_dir = Path(tmp) / "bundle"
        run.model.save(bundle_dir, metrics=report, fingerprint=fingerprint)
        version = R.log_training_run(
            registry,
            kind=KIND,
            bundle_dir=bundle_dir,
            params={"training": settings.model_dump(mode="json")},
            metrics=numeric_metrics(report),
            data_fingerprint=fingerprint,
            plots=plots,
            tags={"leadcast.dataset": str(Path(data_dir).resolve())},
            contract_summary=contract_summary,
        )
    challenger = {"c_index": report["c_index"], "brier_90d": report["brier_90d"]}
    champion_metrics = _champion_on_same_rows(registry, test, tables, deal_custom, lead_custom)
    decision = R.promote_if_better(
        registry,
        KIND,
        version.version,
        challenger_metrics=challenger,
        champion_metrics=champion_metrics,
        evaluated_on=(
            f"test deal snapshots {run.windows.test_start.date()}..{run.windows.test_end.date()}"
        ),
    )
    return TrainOutcome(
        trained=True,
        message=decision.reason,
        metrics=flat_metrics(report),
        model_version=version.version,
        promoted=decision.promoted,
        decision=decision.action,
    )


def load_version(registry: R.RegistrySettings, version: int | str) -> CloseTimeModel:
    """A registered close-time model (``champion`` or a number), verified on download."""
    return load_registered(registry, KIND, version, CloseTimeModel.load)


def _champion_on_same_rows(
    registry: R.RegistrySettings,
    test: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    deal_custom: list[Any],
    lead_custom: list[Any],
) -> dict[str, float] | None:
    """The champion's c-index and 90-day Brier score on exactly the challenger's test
    rows, with the same point-in-time features (never its stored numbers)."""
    if R.champion(registry, KIND) is None:
        return None
    model = load_version(registry, R.CHAMPION)
    raw = build_close_time_features(
        test,
        leads=tables["leads"],
        stage_history=tables["stage_history"],
        activities=tables["activities"],
        owner_deals=OwnerDealHistory.from_deals(tables["deals"]),
        deal_custom=model.deal_custom,
        lead_custom=model.lead_custom,
    )
    out = model.outlook(model.encoder.transform(raw))
    metrics = evaluate_curves(
        test,
        out.cif_won,
        p_won=out.p_won,
        median_won_days=out.won_days_quantiles[:, 1],
        horizon_weeks=model.horizon_weeks,
    )
    return {"c_index": metrics["c_index"], "brier_90d": metrics["brier_90d"]}


def outlook(
    data_dir: Path,
    *,
    registry: R.RegistrySettings,
    as_of: pd.Timestamp,
    version: int | str = R.CHAMPION,
) -> tuple[pd.DataFrame, list[list[Any]], int]:
    """The deals of a dataset open at ``as_of``, each with its outlook and risk flags
    (point-in-time: only events before ``as_of`` are used). Returns the table (deal
    columns + outlook), the flags per row and the model version that scored them."""
    tables, _, _, _, _ = load_dataset(data_dir)
    model = load_version(registry, version)
    deals = open_deals_at(tables["deals"], as_of)
    if deals.empty:
        raise ValueError(
            f"no deal of {data_dir} is open at {as_of}: pass an --as-of date inside the "
            f"history ({tables['deals']['created_at'].min()} .. "
            f"{tables['deals']['created_at'].max()})"
        )
    deals = deals.reset_index(drop=True)
    table, flags = model.outlook_table(deals, tables)
    keep = ["deal_id", "owner_id", "product", "amount", "currency"]
    out = pd.concat([deals[[c for c in keep if c in deals]], table], axis=1)
    return out, flags, int(model.meta["registered_version"])
