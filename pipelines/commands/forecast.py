"""``leadcast forecast``: the bookings of a period as a distribution, with its drivers."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.commands.arguments import iso_date

if TYPE_CHECKING:
    from rich.console import Console

EPILOG = """\
Bookings of the period = deals already won in it + open deals won in it (each with its
chance from the deal-close-time champion) + deals not created yet that will be created
and won in it (a creation-rate model: the recent level until two years of history, then
trend, weekday and month terms; and recent won amounts). A Monte Carlo with
a shared period factor gives the mean, P10 / P50 / P90, any --quantile and, with
--target, the chance to reach it; the factor's strength and the confidence record come
from the newest `leadcast backtest` of the same data. Without a close-time champion the
stage-weighted forecast (amount × stage win rate for deals dated in the period) is used
and `method` says so; it is always shown as the baseline.

JSON fields: period, as_of, method, fallback_reason, model_version, currency, mean, p10,
p50, p90, quantiles, target, p_target, count (the same for won deals, with
--target-count), breakdown (closed / open_pipeline / new,
by_stage, by_owner, by_product), drivers (expected, spread, at_risk), baseline,
calibration (ρ, level, recalibration of the open deals' chances and their source),
confidence (the backtest record: coverage, accuracy, parts_actual, open_by_size; a warning
is printed for each size of deal whose wins over its recent periods were at least two
spreads off their chances), notes.

Examples:
  leadcast forecast --data .leadcast/demo-data --period-start 2026-11-01 --period-end 2026-11-30
  leadcast forecast --data data/crm --period-start 2026-10-01 --period-end 2026-12-31 \\
      --as-of 2026-10-15 --target 250000000 --json > forecast.json
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "forecast",
        help="probabilistic bookings forecast of a period (P10 / P50 / P90, drivers)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset directory")
    parser.add_argument(
        "--period-start", type=iso_date, required=True, help="first day, YYYY-MM-DD"
    )
    parser.add_argument("--period-end", type=iso_date, required=True, help="last day, YYYY-MM-DD")
    parser.add_argument(
        "--as-of", type=iso_date, help="date the pipeline is seen at (default: end of the data)"
    )
    parser.add_argument("--target", type=float, help="bookings target (quota): P(bookings ≥ it)")
    parser.add_argument("--target-count", type=float, help="won-deal target: P(won deals ≥ it)")
    parser.add_argument(
        "--quantile", type=float, action="append", default=[], help="extra quantile, e.g. 0.05"
    )
    parser.add_argument("--draws", type=int, default=10_000, help="Monte Carlo draws (10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--json", action="store_true", help="print the whole forecast as JSON")
    parser.set_defaults(func=execute)


def money(value: float | None, currency: str = "") -> str:
    """``12,345,678 CNY``-style amounts."""
    return "—" if value is None else f"{value:,.0f} {currency}".strip()


def print_forecast(result: dict[str, Any], console: Console | None = None) -> None:
    """The forecast in words and tables (on stdout unless ``console`` is given)."""
    from rich.console import Console
    from rich.table import Table

    from models.review.formatting import percent

    out = console or Console()
    cur = result["currency"]
    period = result["period"]
    out.print(
        f"[bold]Bookings {period['start']} .. {period['end']}[/bold] as of {result['as_of']} "
        f"— method: {result['method']}"
        + (f" (model v{result['model_version']})" if result["model_version"] else "")
    )
    if result["fallback_reason"]:
        out.print(f"[yellow]fallback: {result['fallback_reason']}")
    table = Table()
    for col in ("", "mean", "P10", "P50", "P90"):
        table.add_column(col, justify="right" if col else "left")
    for name, block in (("forecast", result), ("stage-weighted baseline", result["baseline"])):
        table.add_row(name, *(money(block[k], cur) for k in ("mean", "p10", "p50", "p90")))
    c = result["count"]
    table.add_row("won deals", *(f"{c[k]:,.1f}" for k in ("mean", "p10", "p50", "p90")))
    out.print(table)
    if result["target"] is not None:
        out.print(f"{result['p_target']:.0%} chance to reach {money(result['target'], cur)}")
    if c["target"] is not None:
        out.print(f"{c['p_target']:.0%} chance to win at least {c['target']:,.0f} deals")
    b = result["breakdown"]
    out.print(
        f"closed {money(b['closed']['amount'], cur)} ({b['closed']['count']} deals); open "
        f"pipeline {money(b['open_pipeline']['mean'], cur)} expected from "
        f"{b['open_pipeline']['n_open_deals']} open deals; new deals "
        f"{money(b['new']['mean'], cur)} expected"
    )
    risk = result["drivers"]["at_risk"]
    out.print(
        f"at-risk (flagged) deals: {risk['n_deals']} carrying {money(risk['expected'], cur)} "
        f"({risk['share_of_mean']:.0%} of the mean)"
        + "".join(
            f"; {code} {m['n_deals']} ({m['share_of_mean']:.0%})"
            for code, m in risk["by_flag"].items()
        )
    )
    top = Table(title="Deals carrying the forecast")
    for col in ("deal", "stage", "owner", "amount", "P(won in period)", "expected", "flags"):
        top.add_column(col)
    for d in result["drivers"]["expected"]:
        top.add_row(
            d["deal_id"], str(d["stage"]), str(d["owner"]), money(d["amount"]),
            f"{d['p_won_in_period']:.0%}", money(d["expected"]), ",".join(d["flags"]),
        )  # fmt: skip
    out.print(top)
    conf = result["confidence"]
    cal = result["calibration"]
    if conf:
        out.print(
            f"Confidence: over {conf['n_periods']} backtested {conf['freq']}s "
            f"({conf['first_period']} .. {conf['last_period']}) the 80% interval held the "
            f"actual {conf['coverage_80']:.0%} of the time and the 50% interval "
            f"{conf['coverage_50']:.0%}; P50 accuracy {percent(conf['accuracy'])} "
            f"(stage-weighted: {percent(conf['baseline']['accuracy'])}). ρ = {cal['rho']}, "
            f"level = {cal['level']}."
        )
        if cal.get("recalibration"):
            r = cal["recalibration"]
            out.print(
                f"The open deals' chances are recalibrated, sigmoid({r['a']:.3f}·logit(p) "
                f"{r['b']:+.3f}), as learnt from {r['n_deals']:,} open deals of the last "
                f"{r['n_periods']} backtested {conf['freq']}s."
            )
        _print_off_sizes(conf, out)
    else:
        out.print(f"[yellow]Confidence: not backtested yet; ρ = {cal['rho']} ({cal['source']})")
    for note in result["notes"]:
        out.print(f"note: {note}")


def _print_off_sizes(conf: Mapping[str, Any], out: Console) -> None:
    """A warning per size of deal whose wins, over the backtest's recent periods, were at
    least two spreads off what their chances expected
    (:func:`models.size_calibration.off_bands`). Deals without an amount are left out:
    they add nothing to the bookings."""
    from models.review.formatting import percent
    from models.size_calibration import BAND_LABELS, warned_bands

    sizes = conf.get("open_by_size") or {}
    source = "" if conf.get("same_data") else " (a backtest on other data)"
    for name, b in warned_bands(sizes):
        lean = "high" if b["z"] < 0 else "low"
        out.print(
            f"[yellow]Over the last {sizes['recent_periods']} backtested {conf['freq']}s"
            f"{source}, open deals of {b['min_amount']:,.0f} – {b['max_amount']:,.0f} "
            f"({BAND_LABELS.get(name, name)} by amount) had {b['wins']:,} wins where their "
            f"chances expected {b['expected_wins']:,.1f} ({percent(b['wins_over_expected'])}"
            f", z {b['z']:+.1f}). The part of this forecast that such deals carry may run "
            f"{lean}: read it at about {percent(b['won_over_expected_amount'])} of its "
            "expected value, as they booked."
        )


def execute(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.console import Console

    from models.forecast import Period
    from models.registry import RegistrySettings
    from pipelines.forecast import forecast

    if args.draws < 100:
        raise ValueError(f"--draws {args.draws} is too few for stable quantiles; use at least 100")
    bad = [q for q in args.quantile if not 0 < q < 1]
    if bad:
        raise ValueError(f"--quantile must be strictly between 0 and 1; got {bad}")
    period = Period.from_days(args.period_start, args.period_end)
    as_of = None if args.as_of is None else pd.Timestamp(args.as_of)
    with Console(stderr=True).status("forecasting") as status:
        result = forecast(
            args.data,
            registry=RegistrySettings.from_env(),
            period=period,
            as_of=as_of,
            target=args.target,
            target_count=args.target_count,
            quantiles=args.quantile,
            draws=args.draws,
            seed=args.seed,
            progress=lambda msg: status.update(msg),
        )
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_forecast(result)
    return 0
