"""``leadcast train conversion``: train, evaluate, register and maybe promote a model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

EPILOG = """\
Trains on snapshots of open leads (time-ordered train / validation / test split, the test
being the most recent complete months), calibrates on validation, reports every metric on
the test rows beside the baselines (BANT rules, naive Bayes, logistic regression), logs the
run to MLflow ($LEADCAST_HOME/mlflow.db unless MLFLOW_TRACKING_URI is set), registers a
version of 'lead-conversion' and moves the 'champion' alias only if the new version beats
the champion on the same test rows (AUC not lower by more than 0.005, log loss not higher).

Example:
  leadcast train conversion --data data/demo
  leadcast train conversion --data data/olist --test-days 60 --validation-days 45 --json
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "train",
        help="train a model on a dataset and register it in MLflow",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", choices=["conversion"], help="which model to train")
    parser.add_argument("--data", type=Path, required=True, help="dataset directory")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--min-converted",
        type=int,
        default=200,
        help="fewest converted leads in the training window to register a model (200)",
    )
    parser.add_argument("--test-days", type=int, default=91, help="test window in days (91)")
    parser.add_argument(
        "--validation-days", type=int, default=91, help="validation window in days (91)"
    )
    parser.add_argument(
        "--gap-days",
        type=int,
        default=None,
        help="purge gap between train / validation / test (default: the 90-day horizon)",
    )
    parser.set_defaults(func=execute)


def print_conversion_report(console: Console, result: dict[str, Any]) -> None:
    table = Table(title="Lead conversion — test period (same rows for every scorer)")
    for col in ("scorer", "AUC", "log loss"):
        table.add_column(col, justify="right" if col != "scorer" else "left")

    def fmt(v: Any) -> str:
        return "—" if v is None else f"{v:.4f}"

    table.add_row("LightGBM (calibrated)", fmt(result.get("auc")), fmt(result.get("logloss")))
    for name, m in result.get("baselines", {}).items():
        table.add_row(name, fmt(m.get("auc")), fmt(m.get("logloss")))
    console.print(table)
    console.print(
        f"PR AUC {fmt(result.get('pr_auc'))} · Brier {fmt(result.get('brier'))} · "
        f"ECE {fmt(result.get('ece'))} · top-decile lift {fmt(result.get('top_decile_lift'))}"
    )
    oracle = result.get("oracle")
    if oracle:
        console.print(
            f"Oracle (creation-time test snapshots, n={oracle['n']}): truth AUC "
            f"{fmt(oracle['auc'])} / log loss {fmt(oracle['logloss'])}; model AUC "
            f"{fmt(oracle['model_auc'])} / log loss {fmt(oracle['model_logloss'])}"
        )


def execute(args: argparse.Namespace) -> int:
    from models.conversion_training import ConversionTrainingSettings
    from models.registry import RegistrySettings
    from models.snapshots import SnapshotSettings
    from pipelines.training import train_conversion

    console = Console(stderr=True)
    settings = ConversionTrainingSettings(
        snapshots=SnapshotSettings(
            test_days=args.test_days,
            validation_days=args.validation_days,
            gap_days=args.gap_days,
        ),
        min_converted_leads=args.min_converted,
    )
    with console.status("training the conversion model") as status:
        outcome = train_conversion(
            args.data,
            registry=RegistrySettings.from_env(),
            settings=settings,
            progress=lambda msg: status.update(msg),
        )
    result = outcome.to_json()
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        out = Console()
        if outcome.trained:
            print_conversion_report(out, result)
            out.print(
                f"registered lead-conversion version {outcome.model_version}: {outcome.message}"
            )
        else:
            out.print(f"[yellow]{outcome.message}")
    return 0 if outcome.trained else 1
