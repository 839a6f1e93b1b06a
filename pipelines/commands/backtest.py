"""``leadcast backtest``: how often the forecast was right, period after period."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

EPILOG = """\
For every month (or quarter) after the warm-up, forecasts the period as of its first day
from the data as it was then (close-time models retrained on earlier data only, every
--refit-months), and compares with what was booked. Reports, for the model and the
stage-weighted baseline side by side: coverage of the 50% and 80% intervals, CRPS, MAPE
of the P50 and HubSpot's accuracy max(0, 1 − |actual − P50| / actual). The dependence ρ
and the recalibration of the open deals' chances (the bias correction; a level multiplier
instead where there is none yet) of each period are fitted on earlier periods only; those
fitted on the last periods are what `leadcast forecast` and the service use next. Logged to
MLflow (experiment leadcast-forecast-backtest) with a fan chart of the bands against the
actuals.

JSON fields: n_periods, coverage_50, coverage_80,
coverage_check.{50,80}.{inside,n,low_95,high_95,p_value}, crps, mape_p50, accuracy,
crps_skill_vs_baseline, rho, level, baseline.{coverage_50,coverage_80,crps,mape_p50,accuracy},
parts_actual.{open,new}.{forecast,actual,actual_over_forecast} (all periods together),
open_by_size.{all,recent}.<band>.{min_amount,max_amount,deal_periods,share,expected_wins,
wins,wins_over_expected,spread,z,expected_amount,won_amount,won_over_expected_amount} and
open_by_size.recent_periods (the open deals' expected against actual wins by size of
amount, bands bottom_50pct .. top_1pct and no_amount, over all periods and the last 12),
oracle.{n_periods,coverage_50,coverage_80,coverage_check,crps,mape_p50,accuracy,mean_pit,
deal_periods_without_truth} and oracle_note (generated data only: the forecaster that knows
each open deal's true law), periods (one record per period, with
parts.{open_mean,open_actual,new_mean,new_actual}, and oracle on generated data), run_id.

Examples:
  leadcast backtest --data .leadcast/demo-data
  leadcast backtest --data data/crm --freq quarter --json > backtest.json
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "backtest",
        help="backtest the forecast over past months or quarters (coverage, CRPS, accuracy)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset directory")
    parser.add_argument(
        "--freq",
        choices=("month", "quarter"),
        default="month",
        help="length of each backtested period (month)",
    )
    parser.add_argument(
        "--warmup-days", type=int, default=270, help="history before the first period (270)"
    )
    parser.add_argument(
        "--refit-months", type=int, default=3, help="retrain the close-time model every N (3)"
    )
    parser.add_argument("--draws", type=int, default=4000, help="Monte Carlo draws (4000)")
    parser.add_argument("--json", action="store_true", help="print the summary and periods")
    parser.set_defaults(func=execute)


def print_backtest(
    summary: dict[str, Any],
    periods: list[dict[str, Any]],
    run_id: str,
    console: Console | None = None,
) -> None:
    """The backtest table, model beside baseline (on stdout unless ``console`` is given)."""
    from rich.console import Console
    from rich.table import Table

    out = console or Console()
    table = Table(
        title=f"Backtest: {summary['n_periods']} {summary['freq']}s "
        f"{summary['first_period']} .. {summary['last_period']}"
    )
    for col in ("forecaster", "50% coverage", "80% coverage", "CRPS", "MAPE P50", "accuracy"):
        table.add_column(col, justify="left" if col == "forecaster" else "right")

    def row(name: str, m: dict[str, Any]) -> None:
        table.add_row(
            name,
            f"{m['coverage_50']:.0%}",
            f"{m['coverage_80']:.0%}",
            f"{m['crps']:,.0f}",
            "—" if m["mape_p50"] is None else f"{m['mape_p50']:.1%}",
            "—" if m["accuracy"] is None else f"{m['accuracy']:.1%}",
        )

    row("model (close-time + new deals)", summary)
    warm = summary.get("after_calibration_warmup") or {}
    if warm.get("n_periods"):
        row(f"  model, the {warm['n_periods']} periods after calibration warm-up", warm)
    row("stage-weighted baseline", summary["baseline"])
    oracle = summary.get("oracle")
    if oracle:
        row("oracle: each open deal's true law", oracle)
    out.print(table)
    for level, check in (summary.get("coverage_check") or {}).items():
        out.print(
            f"{level}% intervals held {check['inside']} of {check['n']} actuals; from "
            f"{check['n']} periods the true rate is placed between {check['low_95']:.0%} and "
            f"{check['high_95']:.0%} (95% interval; binomial test against {level}%: "
            f"p = {check['p_value']:.2f})"
        )
    skill = summary["crps_skill_vs_baseline"]
    if skill is not None:
        out.print(f"CRPS {skill:.0%} lower than the stage-weighted baseline's")
    if oracle:
        out.print(oracle_sentence(summary))
    for part, name in (
        ("open", "Deals open at each period's start"),
        ("new", "Deals created inside each period"),
    ):
        record = (summary.get("parts_actual") or {}).get(part)
        if record and record["actual_over_forecast"] is not None:
            out.print(
                f"{name} booked {record['actual']:,.0f} in all periods together: "
                f"{record['actual_over_forecast']:.0%} of their forecast mean "
                f"{record['forecast']:,.0f}"
            )
    sizes = summary.get("open_by_size") or {}
    if sizes:
        out.print(_size_table(sizes))
    out.print(f"ρ = {summary['rho']}, level = {summary['level']}: {summary['calibration_note']}")
    out.print(summary["method_note"])
    out.print(f"logged to MLflow run {run_id}")


def oracle_sentence(summary: Mapping[str, Any]) -> str:
    """What the oracle's row means (generated data only): how far the model's CRPS is
    above the oracle's, and the oracle's own coverages, which differ from nominal by chance
    (and by the new deals' part, which it shares with the model)."""
    oracle, n = summary["oracle"], summary["n_periods"]
    inside = {k: check["inside"] for k, check in oracle["coverage_check"].items()}
    gap = summary["crps"] / oracle["crps"] - 1.0 if oracle["crps"] else None
    return (
        "The oracle knows what no forecast can: each open deal's true law, from the "
        "generator's truth. "
        + ("" if gap is None else f"The model's CRPS is {gap:.0%} above the oracle's. ")
        + f"With the open deals' chances exact, the oracle held {inside['50']} of {n} actuals "
        f"in its 50% intervals and {inside['80']} of {n} in its 80% ones: a coverage measured "
        "on this many periods moves that far by chance alone."
    )


def _size_table(sizes: Mapping[str, Any]) -> Table:
    """The open deals' expected against actual wins, band of deal size by band, over all
    periods and over the recent ones (:func:`models.backtest._open_by_size`)."""
    from rich.table import Table

    from models.review.formatting import money, number, percent
    from models.size_calibration import BAND_LABELS, NO_AMOUNT

    recent_n = sizes["recent_periods"]
    table = Table(
        title="Open deals by size: the wins their chances expected, and the wins they had"
    )
    for col in (
        "size band", "amounts", "share", "wins / expected", "won/exp", "z", "amount won/exp",
        f"last {recent_n}: won/exp", f"last {recent_n}: z",
    ):  # fmt: skip
        table.add_column(col, justify="left" if col == "size band" else "right", overflow="fold")

    def z(value: float | None) -> str:
        return "—" if value is None else f"{value:+.1f}"

    for name, band in sizes["all"].items():
        recent = sizes["recent"].get(name) or {}
        table.add_row(
            BAND_LABELS.get(name, name),
            "—"
            if name == NO_AMOUNT
            else f"{money(band['min_amount'], '')}–{money(band['max_amount'], '')}",
            percent(band["share"]),
            f"{number(band['wins'])} / {number(band['expected_wins'], 1)}",
            percent(band["wins_over_expected"]),
            z(band["z"]),
            percent(band["won_over_expected_amount"]),
            percent(recent.get("wins_over_expected")),
            z(recent.get("z")),
        )
    table.caption = (
        "share: of the open deals of all periods (a deal open at the start of three periods "
        "counts three times). won/exp: the wins over the wins the chances expected; under "
        "100% the band was over-forecast, and its amounts weigh on the bookings in full. z: "
        "that gap in the deals' own spreads, as if independent; |z| under about 2 is noise."
    )
    return table


def execute(args: argparse.Namespace) -> int:
    from rich.console import Console

    from models.backtest import BacktestSettings
    from models.registry import RegistrySettings
    from pipelines.forecast import backtest

    settings = BacktestSettings(
        freq=args.freq,
        warmup_days=args.warmup_days,
        refit_every_months=args.refit_months,
        draws=args.draws,
    )
    from models.conversion_training import NotEnoughDataError

    try:
        with Console(stderr=True).status("backtesting") as status:
            result, run_id = backtest(
                args.data,
                registry=RegistrySettings.from_env(),
                settings=settings,
                progress=lambda msg: status.update(msg),
            )
    except NotEnoughDataError as exc:
        print(f"leadcast backtest: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**result.summary, "periods": result.periods, "run_id": run_id}, indent=2))
    else:
        print_backtest(result.summary, result.periods, run_id)
    return 0
