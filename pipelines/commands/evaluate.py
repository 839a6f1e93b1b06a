"""``leadcast evaluate conversion``: score a registered model version on a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

EPILOG = """\
Scores every lead snapshot of the dataset whose 90-day outcome is known with the given
version (default: the champion) and prints its metrics beside the BANT rules.

Example:
  leadcast evaluate conversion --data data/new-quarter
  leadcast evaluate conversion --data data/new-quarter --version 3 --json
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="evaluate a registered model version on a dataset",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", choices=["conversion"], help="which model")
    parser.add_argument("--data", type=Path, required=True, help="dataset directory")
    parser.add_argument("--version", default="champion", help="version number or 'champion'")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from rich.console import Console

    from models.registry import RegistrySettings
    from pipelines.commands.train import print_conversion_report
    from pipelines.training import evaluate_conversion

    version: int | str = int(args.version) if str(args.version).isdigit() else args.version
    with Console(stderr=True).status(f"scoring {args.data} with version {version}"):
        result = evaluate_conversion(
            args.data, registry=RegistrySettings.from_env(), version=version
        )
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        console = Console()
        print_conversion_report(console, result)
        console.print(f"version {result['model_version']} on {result['snapshots']:,} snapshots")
    return 0
