"""``leadcast report``: the managers' forecast review page as one self-contained HTML file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipelines.commands.arguments import iso_date

EPILOG = """\
The same page as the service's GET /ui, as a file that opens in any browser with no
internet: the bookings distribution of the period (P10 / P50 / P90, the chance to reach
--target), closed / open / new and by stage, owner and product, the deals carrying the
forecast and the at-risk ones, the backtest record (how often the 80% band held), the
models' health, and the sales reports (stage funnel, by lead source, owner follow-up,
lead grades against what they became). English and Chinese, switchable on the page.

--period month | quarter is the calendar month or quarter holding --as-of (default: the
end of the history, i.e. the coming month of an export taken at a month's end); give
--period-start and --period-end for any other period.

Examples:
  leadcast report --data .leadcast/demo-data --out report.html
  leadcast report --data data/crm --period quarter --target 250000000 --lang zh --out q.html
  leadcast report --data data/crm --period-start 2026-11-01 --period-end 2026-12-31 \\
      --out nov-dec.html
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "report",
        help="the forecast review page (with the sales reports) as one HTML file",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset directory")
    parser.add_argument(
        "--out", type=Path, default=Path("report.html"), help="HTML file to write (report.html)"
    )
    parser.add_argument(
        "--period",
        choices=("month", "quarter"),
        default="month",
        help="the calendar month or quarter holding --as-of (month)",
    )
    parser.add_argument("--period-start", type=iso_date, help="first day of a custom period")
    parser.add_argument("--period-end", type=iso_date, help="last day of a custom period")
    parser.add_argument(
        "--as-of", type=iso_date, help="date the pipeline is seen at (default: end of the data)"
    )
    parser.add_argument("--target", type=float, help="bookings target (quota)")
    parser.add_argument(
        "--lang", choices=("en", "zh"), default="en", help="language shown first (en)"
    )
    parser.add_argument("--draws", type=int, default=10_000, help="Monte Carlo draws (10000)")
    parser.add_argument("--json", action="store_true", help="also print the page's content as JSON")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.console import Console

    from models.forecast import Period
    from models.registry import RegistrySettings
    from pipelines.report import review_report

    if (args.period_start is None) != (args.period_end is None):
        raise ValueError(
            "give both --period-start and --period-end for a custom period (or neither, "
            "for --period month | quarter)"
        )
    if args.draws < 100:
        raise ValueError(f"--draws {args.draws} is too few for stable quantiles; use at least 100")
    period = (
        None if args.period_start is None else Period.from_days(args.period_start, args.period_end)
    )
    with Console(stderr=True).status("building the review report") as status:
        html, content = review_report(
            args.data,
            registry=RegistrySettings.from_env(),
            period=period,
            choice=args.period,
            target=args.target,
            as_of=None if args.as_of is None else pd.Timestamp(args.as_of),
            lang=args.lang,
            draws=args.draws,
            progress=lambda msg: status.update(msg),
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    if args.json:
        print(json.dumps(content, indent=2, default=str))
    else:
        p = content["period"]
        print(
            f"Wrote {out} ({len(html) / 1024:,.0f} KiB): the review of {p['start']} .. {p['end']}"
        )
        print(f"Open it in a browser: file://{out.resolve()}")
    return 0
