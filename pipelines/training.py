"""Orchestration of model training: data in, MLflow run + registered version + decision out.

Reads a validated dataset directory, trains and evaluates (``models.conversion_training``),
writes the bundle, logs everything to MLflow, registers a version and lets it replace the
champion only when it beats the champion on the same test rows.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.dataset import read_manifest
from data_contracts.truth import TRUTH_DIR
from data_contracts.validation import ValidationSettings, load_valid_tables
from models import metrics as M
from models import registry as R
from models.bundle import fingerprint_frames
from models.conversion import KIND, ConversionModel
from models.conversion_training import (
    ConversionTrainingSettings,
    NotEnoughDataError,
    data_end_of,
    train_and_evaluate,
)
from models.plots import feature_importance_chart, lift_chart, reliability_diagram

Progress = Callable[[str], None]


@dataclass
class TrainOutcome:
    """What a training command reports (``--json`` prints :meth:`to_json`)."""

    trained: bool
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)
    model_version: int | None = None
    promoted: bool = False
    decision: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.metrics,
            "trained": self.trained,
            "model_version": self.model_version,
            "promoted": self.promoted,
            "decision": self.decision,
            "message": self.message,
        }


def load_dataset(
    data_dir: Path, validation: ValidationSettings | None = None
) -> tuple[dict[str, pd.DataFrame], Any, pd.DataFrame | None, pd.Timestamp, dict[str, Any]]:
    """Valid rows of every table, the manifest, the lead truth (generated data only), the
    end of the history and a contract summary. Quarantined rows are excluded (and counted).
    """
    valid = load_valid_tables(Path(data_dir), validation)
    manifest = read_manifest(Path(data_dir))
    truth = read_truth(Path(data_dir), manifest, "leads")
    end_date = manifest.provenance.get("end_date")
    data_end = (
        pd.Timestamp(end_date) + pd.Timedelta(days=1) if end_date else data_end_of(valid.tables)
    )
    contract_summary = {
        "passed": valid.report.passed,
        "quarantined_rows": valid.report.quarantined_rows,
        "tables": {
            n: {"rows": t.rows, "bad_rows": t.bad_rows} for n, t in valid.report.tables.items()
        },
    }
    return valid.tables, manifest, truth, data_end, contract_summary


def read_truth(data_dir: Path, manifest: Any, table: str) -> pd.DataFrame | None:
    """The generator's truth table ``table`` (``leads`` or ``deals``), or None for data that
    has none (every real CRM export)."""
    if not manifest.has_truth:
        return None
    path = Path(data_dir) / TRUTH_DIR / f"{table}.{manifest.file_format}"
    if not path.is_file():
        return None
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def numeric_metrics(tree: dict[str, Any]) -> dict[str, Any]:
    """The numeric leaves of a nested report (MLflow metrics); text and curves are left to
    the JSON report stored in the bundle."""
    out: dict[str, Any] = {}
    for raw_key, value in tree.items():
        key = re.sub(r"[^0-9A-Za-z_\-. :/]", "_", str(raw_key))
        if isinstance(value, dict):
            nested = numeric_metrics(value)
            if nested:
                out[key] = nested
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int | float | np.integer | np.floating):
            out[key] = float(value)
    return out


def _flat_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The headline metrics under the names the CLI documents."""

    def pick(r: dict[str, Any]) -> dict[str, Any]:
        return {"auc": r.get("roc_auc"), "logloss": r.get("log_loss")}

    out: dict[str, Any] = {
        "auc": report.get("roc_auc"),
        "pr_auc": report.get("pr_auc"),
        "logloss": report.get("log_loss"),
        "brier": report.get("brier"),
        "ece": report.get("ece"),
        "top_decile_lift": report.get("top_decile_lift"),
        "top_decile_rate": report.get("top_decile_rate"),
        "n_test": report.get("n"),
        "reasons_top1_agreement": report.get("reasons_top1_agreement"),
        "reasons_top5_agreement": report.get("reasons_top5_agreement"),
        "baselines": {k: pick(v) for k, v in report.get("baselines", {}).items()},
    }
    if "oracle" in report:
        out["oracle"] = report["oracle"]
    return out


def train_conversion(
    data_dir: Path,
    *,
    registry: R.RegistrySettings,
    settings: ConversionTrainingSettings | None = None,
    progress: Progress = lambda _msg: None,
) -> TrainOutcome:
    """Train, evaluate, log, register and (maybe) promote a lead-conversion model."""
    settings = settings or ConversionTrainingSettings()
    progress("validating and loading the data")
    tables, manifest, truth, data_end, contract_summary = load_dataset(data_dir)
    custom = list(manifest.contract()["leads"].custom_columns)
    progress("building snapshots and features, training LightGBM and the baselines")
    try:
        run = train_and_evaluate(
            tables, custom=custom, settings=settings, truth=truth, data_end=data_end
        )
    except NotEnoughDataError as exc:
        return TrainOutcome(trained=False, message=str(exc))
    assert run.model is not None and run.test_frame is not None
    report = run.report
    metrics = _flat_metrics(report)
    fingerprint = fingerprint_frames(
        {k: tables[k] for k in ("leads", "activities")},
        window=(
            pd.Timestamp(tables["leads"]["created_at"].min()).to_pydatetime(),
            run.windows.train_end.to_pydatetime(),
        ),
    )
    progress("logging the run to MLflow and registering the bundle")
    y_test = run.test_frame["label"].to_numpy()
    probs = run.test_probabilities
    names = run.model.encoder.feature_names
    gains = [run.feature_importance[n] for n in names]
    plots = {
        "reliability": reliability_diagram(
            y_test, probs["model"], baselines={k: v for k, v in probs.items() if k != "model"}
        ),
        "lift": lift_chart(
            y_test, probs["model"], baselines={k: v for k, v in probs.items() if k != "model"}
        ),
        "feature_importance": feature_importance_chart(names, gains),
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
    challenger = {"auc": float(report["roc_auc"]), "log_loss": float(report["log_loss"])}
    champion_metrics = _champion_on_same_rows(registry, run.test_frame, y_test, tables, custom)
    decision = R.promote_if_better(
        registry,
        KIND,
        version.version,
        challenger_metrics=challenger,
        champion_metrics=champion_metrics,
        evaluated_on=(
            f"test snapshots {run.windows.test_start.date()}..{run.windows.test_end.date()}"
        ),
    )
    return TrainOutcome(
        trained=True,
        message=decision.reason,
        metrics=metrics,
        model_version=version.version,
        promoted=decision.promoted,
        decision=decision.action,
    )


def _champion_on_same_rows(
    registry: R.RegistrySettings,
    test: pd.DataFrame,
    y_test: np.ndarray,
    tables: dict[str, pd.DataFrame],
    custom: list[Any],
) -> dict[str, float] | None:
    """The current champion's AUC and log loss on exactly the challenger's test rows,
    with the same point-in-time features (never the champion's stored numbers)."""
    current = R.champion(registry, KIND)
    if current is None:
        return None
    from features.lead_features import OwnerHistory, build_lead_features

    with tempfile.TemporaryDirectory(prefix="leadcast-champion-") as tmp:
        path = R.download_bundle(registry, KIND, current.version, Path(tmp) / "bundle")
        model = ConversionModel.load(path)
    raw = build_lead_features(
        test, tables["activities"], OwnerHistory.from_leads(tables["leads"]), custom
    )
    p = model.predict(model.encoder.transform(raw))
    return {"auc": M.roc_auc(y_test, p), "log_loss": M.log_loss(y_test, p)}


def load_conversion_version(registry: R.RegistrySettings, version: int | str) -> ConversionModel:
    """A registered conversion model (``champion`` or a number), verified on download."""
    from pipelines.registered import load_registered

    return load_registered(registry, KIND, version, ConversionModel.load)


def evaluate_conversion(
    data_dir: Path,
    *,
    registry: R.RegistrySettings,
    version: int | str = R.CHAMPION,
    settings: ConversionTrainingSettings | None = None,
) -> dict[str, Any]:
    """Score a registered version on a dataset: every snapshot with a complete 90-day
    label window, point-in-time features from that dataset, metrics beside the BANT rules.
    """
    from features.lead_features import OwnerHistory, build_lead_features
    from models.bant import load_default_config, score_frame
    from models.snapshots import LABEL, lead_snapshots

    settings = settings or ConversionTrainingSettings()
    tables, manifest, truth, data_end, _ = load_dataset(data_dir)
    custom = list(manifest.contract()["leads"].custom_columns)
    model = load_conversion_version(registry, version)
    resolved_version = model.meta["registered_version"]
    snaps = lead_snapshots(tables["leads"], data_end, settings.snapshots)
    if snaps.empty:
        raise ValueError(
            f"{data_dir}: no lead snapshot has a complete {settings.snapshots.horizon_days}-day "
            "label window; evaluation needs older history"
        )
    raw = build_lead_features(
        snaps, tables["activities"], OwnerHistory.from_leads(tables["leads"]), custom
    )
    p = model.predict(model.encoder.transform(raw))
    y = snaps[LABEL].to_numpy()
    p_bant = score_frame(snaps, load_default_config())["score"].to_numpy(np.float64)
    report = M.classification_report(y, p)
    out = _flat_metrics(report | {"baselines": {"bant": M.classification_report(y, p_bant)}})
    out |= {"model_version": resolved_version, "snapshots": len(snaps)}
    if truth is not None:
        from models.conversion_training import _oracle

        out["oracle"] = _oracle(snaps, p, truth)
    return out
