"""``leadcast demo``: the whole job on embedded defaults, from nothing.

Generates a seeded demo CRM history under ``$LEADCAST_HOME/demo-data``, validates it
against the data contracts, trains the lead-conversion model and the deal close-time model
(each registered in the local MLflow store and promoted to champion when it beats the
current one), shows the outlook of the deals open at the end of the history, backtests the
bookings forecast month by month (logged to MLflow), forecasts the coming month with that
confidence record, prints a summary, and ends serving the models over HTTP on 127.0.0.1
(token, docs URL and a ``curl`` example printed; ``--no-serve`` stops before).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from pipelines.commands.arguments import iso_date

EPILOG = """\
Everything goes under $LEADCAST_HOME (default ./.leadcast): demo-data/ and the MLflow store.

Example:
  leadcast demo
  leadcast demo --leads 50000 --end-date 2026-10-31
"""


def register(sub: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = sub.add_parser(
        "demo",
        help="run the demo end to end on generated data (embedded defaults)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--leads", type=int, default=20_000, help="leads to generate (20000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
    parser.add_argument(
        "--end-date",
        type=iso_date,
        default=None,
        help="last day of the generated history, YYYY-MM-DD (default: yesterday, UTC)",
    )
    parser.add_argument("--home", type=Path, default=None, help="override $LEADCAST_HOME")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--no-serve", action="store_true", help="stop after the summary (no HTTP service)"
    )
    parser.add_argument("--port", type=int, default=3000, help="service port (3000)")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from data_contracts.validation import ValidationSettings, validate_dataset
    from models.registry import RegistrySettings
    from pipelines.close_time import train_close_time
    from pipelines.commands.train import print_close_time_report, print_conversion_report
    from pipelines.demo_crm import GeneratorConfig, generate, summarize, write_generated
    from pipelines.training import train_conversion

    console = Console(stderr=args.json)
    registry = RegistrySettings.from_env()
    home = args.home or registry.home
    end = args.end_date or (datetime.now(UTC).date() - timedelta(days=1))
    data_dir = home / "demo-data"
    summary: dict[str, Any] = {"home": str(home.resolve()), "data": str(data_dir.resolve())}

    console.rule("[bold]1. Generate a demo CRM history")
    crm = generate(GeneratorConfig(leads=args.leads, seed=args.seed, end_date=end))
    write_generated(crm, data_dir)
    summary["generated"] = summarize(crm)
    console.print(f"{args.leads:,} leads ending {end} → {data_dir}")

    console.rule("[bold]2. Validate it against the data contracts")
    report = validate_dataset(data_dir, ValidationSettings())
    summary["validation"] = {"passed": report.passed, "quarantined_rows": report.quarantined_rows}
    for line in report.messages():
        console.print(line)
    if not report.passed:
        console.print(f"[red]validation failed; see {report.summary_md}")
        return 1

    console.rule("[bold]3. Train, register and promote the lead-conversion model")
    registry = registry.model_copy(update={"home": home})
    with console.status("training") as status:
        outcome = train_conversion(
            data_dir, registry=registry, progress=lambda msg: status.update(msg)
        )
    summary["conversion_model"] = outcome.to_json()
    if outcome.trained:
        print_conversion_report(console, outcome.to_json())
        console.print(
            f"lead-conversion version {outcome.model_version} registered in "
            f"{registry.resolved_tracking_uri}: {outcome.message}"
        )
    else:
        console.print(f"[yellow]{outcome.message}")

    console.rule("[bold]4. Train, register and promote the deal close-time model")
    with console.status("training") as status:
        deal_outcome = train_close_time(
            data_dir, registry=registry, progress=lambda msg: status.update(msg)
        )
    summary["close_time_model"] = deal_outcome.to_json()
    if deal_outcome.trained:
        print_close_time_report(console, deal_outcome.to_json())
        console.print(
            f"deal-close-time version {deal_outcome.model_version} registered: "
            f"{deal_outcome.message}"
        )
        summary["open_deals"] = _open_deals(data_dir, registry, end, console)
    else:
        console.print(f"[yellow]{deal_outcome.message}")

    console.rule("[bold]5. Backtest the bookings forecast and forecast the coming month")
    summary["forecast"] = _forecast(data_dir, registry, end, console)

    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        console.rule("[bold]Summary")
        console.print_json(json.dumps(summary["generated"], default=str))
    if args.no_serve:
        return 0
    console.rule("[bold]6. Serve the models over HTTP (Ctrl-C stops it)")
    from pipelines.commands.serve import run_service

    return run_service("127.0.0.1", args.port, home=home, data=data_dir)


def _forecast(data_dir: Path, registry: Any, end: Any, console: Console) -> dict[str, Any]:
    """Backtest (logged to MLflow), then the forecast of the month after the history."""
    import pandas as pd

    from models.backtest import BacktestSettings
    from models.conversion_training import NotEnoughDataError
    from models.forecast import Period
    from pipelines.commands.backtest import print_backtest
    from pipelines.commands.forecast import print_forecast
    from pipelines.forecast import backtest, forecast

    out: dict[str, Any] = {}
    try:
        with console.status("backtesting") as status:
            result, run_id = backtest(
                data_dir,
                registry=registry,
                settings=BacktestSettings(draws=2000),
                progress=lambda msg: status.update(msg),
            )
        print_backtest(result.summary, result.periods, run_id, console)
        out["backtest"] = {k: result.summary[k] for k in ("n_periods", "coverage_80", "crps")}
    except NotEnoughDataError as exc:
        console.print(f"[yellow]no backtest: {exc}")
    start = (pd.Timestamp(end).to_period("M") + 1).start_time  # the month after the data
    month = Period(start, start + pd.DateOffset(months=1))
    with console.status("forecasting") as status:
        result_f = forecast(
            data_dir, registry=registry, period=month, progress=lambda m: status.update(m)
        )
    print_forecast(result_f, console)
    console.print(
        f"Again, or for any period: leadcast forecast --data {data_dir} --period-start "
        f"{month.start.date()} --period-end {month.last_day.date()} [--target X]"
    )
    out["next_month"] = {k: result_f[k] for k in ("period", "method", "mean", "p10", "p50", "p90")}
    return out


def _open_deals(data_dir: Path, registry: Any, end: Any, console: Console) -> dict[str, Any]:
    """The outlook of the deals open at the end of the history, in brief."""
    import pandas as pd

    from pipelines.close_time import outlook

    as_of = pd.Timestamp(end) + pd.Timedelta(days=1)
    table, flags, version = outlook(data_dir, registry=registry, as_of=as_of)
    expected = float((table["amount"].fillna(0.0) * table["p_won_90d"]).sum())
    flagged = sum(1 for row in flags if row)
    console.print(
        f"{len(table):,} deals open on {as_of.date()}: expected bookings within 90 days "
        f"{expected:,.0f}; {flagged:,} carry a risk flag. See them all with: leadcast "
        f"outlook --data {data_dir} --as-of {as_of.date()}"
    )
    return {
        "as_of": str(as_of.date()),
        "open_deals": len(table),
        "expected_bookings_90d": expected,
        "flagged": flagged,
        "model_version": version,
    }
