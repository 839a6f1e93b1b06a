"""``leadcast train conversion|close-time``: train, evaluate, register, maybe promote."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

EPILOG = """\
conversion — trains on snapshots of open leads (time-ordered train / validation / test
split, the test being the most recent complete months), calibrates on validation, reports
every metric on the test rows beside the baselines (BANT rules, naive Bayes, logistic
regression), logs the run to MLflow ($LEADCAST_HOME/mlflow.db unless MLFLOW_TRACKING_URI
is set), registers a version of 'lead-conversion' and moves the 'champion' alias only if
the new version beats the champion on the same test rows (AUC not lower by more than
0.005, log loss not higher).

close-time — trains weekly competing hazards (won / lost, open deals censored) on snapshots
of open deals (time-ordered split; each part's follow-up stops where the next part starts),
calibrates P(won within 30/60/90 days) on validation, reports concordance, time-dependent
Brier score, calibration and the median close-date error on the test snapshots beside
Kaplan–Meier per stage, Cox and the rep's own expected close date (and the oracle on
generated data), and registers 'deal-close-time' under the same champion rule (c-index not
lower by more than 0.005, 90-day Brier not higher).

Example:
  leadcast train conversion --data data/demo
  leadcast train conversion --data data/olist --test-days 60 --validation-days 45 --json
  leadcast train close-time --data data/demo --json
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "train",
        help="train a model on a dataset and register it in MLflow",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", choices=["conversion", "close-time"], help="which model to train")
    parser.add_argument("--data", type=Path, required=True, help="dataset directory")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--min-converted",
        type=int,
        default=200,
        help="conversion: fewest converted leads in the training window (200)",
    )
    parser.add_argument(
        "--min-won",
        type=int,
        default=100,
        help="close-time: fewest won deals in the training snapshots (100)",
    )
    parser.add_argument("--test-days", type=int, default=91, help="test window in days (91)")
    parser.add_argument(
        "--validation-days", type=int, default=91, help="validation window in days (91)"
    )
    parser.add_argument(
        "--gap-days",
        type=int,
        default=None,
        help="conversion: purge gap between the parts (default: the 90-day horizon)",
    )
    parser.add_argument(
        "--horizon-weeks",
        type=int,
        default=26,
        help="close-time: weeks ahead the hazards cover (26)",
    )
    parser.add_argument(
        "--compare-naive",
        action="store_true",
        help="close-time: also train with open deals counted as lost and report the cost",
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


def print_close_time_report(console: Console, result: dict[str, Any]) -> None:
    table = Table(title="Deal close time — test snapshots (same rows for every scorer)")
    columns = ("scorer", "c-index", "Brier 90d", "ECE 90d", "median close MAE (days)")
    for col in columns:
        table.add_column(col, justify="right" if col != "scorer" else "left")

    def fmt(v: Any, digits: int = 4) -> str:
        return "—" if v is None else f"{v:.{digits}f}"

    def row(name: str, m: dict[str, Any]) -> None:
        table.add_row(
            name,
            fmt(m.get("c_index")),
            fmt(m.get("brier_90d")),
            fmt(m.get("ece_90d")),
            fmt(m.get("median_close_mae_days"), 1),
        )

    row("LightGBM hazards (calibrated)", result)
    for name, m in result.get("baselines", {}).items():
        if "skipped" in m:
            console.print(f"{name}: skipped — {m['skipped']}")
            continue
        row(name, m)
    if result.get("oracle"):
        row("oracle (true laws)", result["oracle"])
    if result.get("naive_open_as_lost"):
        row("same model, open deals as lost", result["naive_open_as_lost"])
    console.print(table)
    ceiling = (result.get("oracle") or {}).get("observable_ceiling_c_index")
    if ceiling is not None:
        console.print(
            f"c-index ceiling from these features (a regression on the truth itself): "
            f"{ceiling:.4f} — the rest of the oracle's lead is hidden information"
        )
    gaps = result.get("brier_90d_vs_baselines") or {}
    if gaps:
        console.print(
            "Brier 90d, model − baseline (95% interval, deals resampled): "
            + "; ".join(
                f"{name} {g['difference']:+.4f} [{g['ci_low']:+.4f}, {g['ci_high']:+.4f}]"
                for name, g in gaps.items()
            )
        )
    flags = result.get("risk_flags") or {}
    if flags:
        console.print(
            "Risk flags on the test snapshots — share flagged; outcome rate flagged vs "
            "unflagged deals of the same stages (raw flagged vs all unflagged, which mixes "
            "stages): "
            + "; ".join(
                f"{code} {m['share']:.1%}; {m['outcome'].replace('_', ' ')} "
                f"{_same_stage(m.get('same_stage'))} "
                f"(raw: {fmt(m['rate_flagged'], 2)} vs {fmt(m['rate_unflagged'], 2)})"
                for code, m in flags.items()
            )
        )


def _same_stage(block: dict[str, Any] | None) -> str:
    if not block:
        return "— (no same-stage peers)"
    return f"{block['rate_flagged']:.2f} vs {block['rate_unflagged']:.2f}"


def execute(args: argparse.Namespace) -> int:
    from models.registry import RegistrySettings

    console = Console(stderr=True)
    registry = RegistrySettings.from_env()
    if args.model == "close-time":
        from models.close_time_training import CloseTimeTrainingSettings
        from models.deal_snapshots import DealSnapshotSettings
        from pipelines.close_time import train_close_time

        ct_settings = CloseTimeTrainingSettings(
            snapshots=DealSnapshotSettings(
                test_days=args.test_days,
                validation_days=args.validation_days,
                horizon_weeks=args.horizon_weeks,
            ),
            min_won_deals=args.min_won,
            compare_naive=args.compare_naive,
        )
        with console.status("training the close-time model") as status:
            outcome = train_close_time(
                args.data,
                registry=registry,
                settings=ct_settings,
                progress=lambda msg: status.update(msg),
            )
        return _finish(args, outcome, print_close_time_report, "deal-close-time")

    from models.conversion_training import ConversionTrainingSettings
    from models.snapshots import SnapshotSettings
    from pipelines.training import train_conversion

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
            registry=registry,
            settings=settings,
            progress=lambda msg: status.update(msg),
        )
    return _finish(args, outcome, print_conversion_report, "lead-conversion")


def _finish(args: argparse.Namespace, outcome: Any, printer: Any, kind: str) -> int:
    result = outcome.to_json()
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        out = Console()
        if outcome.trained:
            printer(out, result)
            out.print(f"registered {kind} version {outcome.model_version}: {outcome.message}")
        else:
            out.print(f"[yellow]{outcome.message}")
    return 0 if outcome.trained else 1
