"""``leadcast generate``: write a seeded demo CRM history (with its truth) to a directory."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipelines.commands.arguments import iso_date
from pipelines.demo_crm import GeneratorConfig, generate, summarize, write_generated

EXIT_OK, EXIT_USAGE = 0, 2

EPILOG = """\
Writes DIR/leads, deals, activities, stage_history (.parquet or .csv), DIR/manifest.json and
DIR/truth/ (each lead's exact 90-day conversion probability, each deal's stage rates and
win probability, the monthly shocks, rep traits, and the rows made invalid on purpose).
Same settings → byte-identical files.

Example:
  leadcast generate --leads 100000 --seed 7 --end-date 2026-10-31 --out data/demo
  leadcast generate --leads 5000 --seed 1 --end-date 2026-10-31 --out data/bad \\
      --invalid-share 0.02 --format csv
"""


def register(sub: Any) -> None:
    """Add the ``generate`` subcommand to ``leadcast``'s subparsers."""
    parser = sub.add_parser(
        "generate",
        help="write a seeded demo CRM history with its truth",
        description="Generate a realistic, seeded CRM history (leads, activities, deals, "
        "stage history) ending at --end-date, plus the truth it was drawn from.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--leads", type=int, required=True, help="number of leads, e.g. 100000")
    parser.add_argument("--seed", type=int, required=True, help="random seed (≥ 0)")
    parser.add_argument(
        "--end-date", type=iso_date, required=True, help="last day of the history, YYYY-MM-DD"
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--format", dest="file_format", choices=("parquet", "csv"), default="parquet",
        help="table file format (default: parquet)",
    )  # fmt: skip
    parser.add_argument(
        "--invalid-share", type=float, default=0.0,
        help="share of each table's rows to make invalid on purpose (default 0; e.g. 0.02)",
    )  # fmt: skip
    parser.add_argument("--years", type=float, default=3.0, help="length of history (default 3)")
    parser.add_argument(
        "--shock-sd", type=float, default=0.15,
        help="sd of the monthly shock shared by a month's leads (default 0.15)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Run ``leadcast generate``; returns 0 on success, 2 on bad settings."""
    try:
        config = GeneratorConfig(
            leads=args.leads,
            seed=args.seed,
            end_date=args.end_date,
            years=args.years,
            shock_sd=args.shock_sd,
            invalid_share=args.invalid_share,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
            for e in exc.errors()
        )
        print(f"leadcast generate: error: {problems}", file=sys.stderr)
        return EXIT_USAGE
    from rich.console import Console

    started = time.perf_counter()
    with Console(stderr=True).status(f"generating {config.leads:,} leads") as status:
        crm = generate(config)
        status.update(f"writing the tables to {args.out}")
        write_generated(crm, args.out, args.file_format)
    summary = summarize(crm)
    summary["out"] = str(args.out)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2, sort_keys=True))
        return EXIT_OK
    rows = ", ".join(f"{name} {n:,}" for name, n in summary["rows"].items())
    print(f"Generated {rows} in {summary['seconds']} s.")
    print(
        f"Lead conversion within 90 days: {summary['conversion_90d']:.1%} observed "
        f"(truth {summary['conversion_90d_truth']:.1%}, "
        f"{summary['leads_with_known_90d_label']:,} leads old enough)."
    )
    print(
        f"Deal win rate: {summary['win_rate']:.1%} of closed deals "
        f"({summary['deals_won']:,} won, {summary['deals_lost']:,} lost, "
        f"{summary['deals_open']:,} open)."
    )
    if summary["injected_invalid"]:
        bad = ", ".join(f"{t} {n:,}" for t, n in summary["injected_invalid"].items())
        print(f"Invalid rows injected on purpose: {bad} (see truth/injected_invalid).")
    print(f"Written to {args.out} ({args.file_format}, with manifest.json and truth/).")
    return EXIT_OK
