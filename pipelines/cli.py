"""The ``leadcast`` command: one entry point, one module per subcommand.

Exit codes: 0 success, 1 the data failed its checks, 2 usage or input error (bad option,
missing file, bad mapping), 3 an internal error (a bug: please report it).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_DATA_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

#: subcommand modules under ``pipelines.commands``, in the order ``--help`` lists them
COMMANDS: tuple[str, ...] = (
    "generate",
    "import_data",
    "validate",
    "train",
    "evaluate",
    "outlook",
    "forecast",
    "backtest",
    "report",
    "promote",
    "serve",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadcast",
        description=(
            "Leadcast: calibrated lead scores, deal close-time outlooks and backtested "
            "pipeline forecasts from your CRM history."
        ),
        epilog="Example: leadcast generate --leads 10000 --seed 7 --out data/demo && "
        "leadcast validate data/demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"pipelines.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except (FileNotFoundError, ValueError) as exc:
        print(f"leadcast {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def run() -> None:
    """Console-script entry point."""
    from models.registry import offline_mlflow_environment

    offline_mlflow_environment()
    sys.exit(main())


if __name__ == "__main__":
    run()
