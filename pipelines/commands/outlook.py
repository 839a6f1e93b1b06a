"""``leadcast outlook``: the open deals at a date, with their chance and timing and flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipelines.commands.arguments import iso_date

EPILOG = """\
Scores every deal of the dataset that is open at --as-of with a registered deal-close-time
version (default: the champion), using only what was recorded before that date: P(won)
eventually and within 30 / 60 / 90 days, P10 / P50 / P90 of the won date, the rep's
expected close date, and risk flags (stalled, silent, slipped, unlikely by the expected
date) with their reasons. The table lists the deals with the largest expected bookings in
90 days first; --json prints every deal.

Example:
  leadcast outlook --data .leadcast/demo-data --as-of 2026-10-01
  leadcast outlook --data data/crm --as-of 2026-10-01 --json > outlook.json
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "outlook",
        help="the outlook and risk flags of the deals open at a date",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset directory")
    parser.add_argument(
        "--as-of", type=iso_date, required=True, help="date the deals are seen at, YYYY-MM-DD"
    )
    parser.add_argument("--version", default="champion", help="version number or 'champion'")
    parser.add_argument("--limit", type=int, default=25, help="rows in the table (25)")
    parser.add_argument("--json", action="store_true", help="print every deal as JSON")
    parser.set_defaults(func=execute)


def _records(table: Any, flags: list[list[Any]]) -> list[dict[str, Any]]:
    records = json.loads(table.drop(columns=["flags"]).to_json(orient="records", date_format="iso"))
    for record, row in zip(records, flags, strict=True):
        record["flags"] = [f.model_dump() for f in row]
    return records


def execute(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from models.registry import RegistrySettings
    from models.risk_flags import flag_counts
    from pipelines.close_time import outlook

    version: int | str = int(args.version) if str(args.version).isdigit() else args.version
    as_of = pd.Timestamp(args.as_of)
    with Console(stderr=True).status(f"scoring the deals open on {as_of.date()}"):
        table, flags, used = outlook(
            args.data, registry=RegistrySettings.from_env(), as_of=as_of, version=version
        )
    if args.json:
        print(
            json.dumps(
                {
                    "as_of": str(as_of.date()),
                    "model_version": used,
                    "deals": _records(table, flags),
                },
                indent=2,
                default=str,
            )
        )
        return 0
    console = Console()
    order = (table["amount"].fillna(0.0) * table["p_won_90d"]).sort_values(ascending=False)
    shown = table.loc[order.index[: args.limit]]
    view = Table(
        title=f"Open deals at {as_of.date()} — deal-close-time v{used} "
        f"({len(table):,} open; top {len(shown)} by expected 90-day bookings)"
    )
    for col in ("deal", "stage", "amount", "P(win)", "≤90d", "rep's date", "P50 won", "flags"):
        view.add_column(col, justify="right" if col in ("amount", "P(win)", "≤90d") else "left")
    for _, r in shown.iterrows():
        view.add_row(
            str(r["deal_id"]),
            str(r["current_stage"]),
            f"{r['amount']:,.0f}" if pd.notna(r["amount"]) else "—",
            f"{r['p_win']:.0%}",
            f"{r['p_won_90d']:.0%}",
            str(r["expected_close_date"])[:10] if pd.notna(r["expected_close_date"]) else "—",
            str(r["close_date_p50"])[:10] if pd.notna(r["close_date_p50"]) else "—",
            r["flags"] or "",
        )
    console.print(view)
    counts = {code: n for code, n in flag_counts(flags).items() if n}
    expected = float((table["amount"].fillna(0.0) * table["p_won_90d"]).sum())
    console.print(
        f"expected bookings within 90 days: {expected:,.0f}; flags: "
        + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none")
    )
    return 0
