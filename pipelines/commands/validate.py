"""``leadcast validate``: check a dataset directory against the data contracts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from data_contracts.dataset import DEFAULT_MAX_BAD_SHARE, read_manifest
from pipelines.cli import EXIT_DATA_FAILED, EXIT_OK, EXIT_USAGE
from pipelines.commands.arguments import share

if TYPE_CHECKING:
    from data_contracts.validation import ValidationReport

EPILOG = """\
Examples:
  leadcast validate data/demo
  leadcast validate data/zoho --max-bad-share 0.005 --report-dir reports/zoho --json

Writes REPORT_DIR/quarantine/<table>.csv (one line per bad row and broken rule: _row is the
0-based row position in the table file), REPORT_DIR/summary.json and REPORT_DIR/summary.md;
REPORT_DIR defaults to DIR/validation.
Exit codes: 0 every table within --max-bad-share (quarantined rows, if any, are left out of
training); 1 a table has more bad rows than allowed or a table-level failure (missing file,
missing or unknown columns); 2 DIR is not a dataset or an option is wrong.
"""


def register(sub: Any) -> None:
    """Add the ``validate`` subcommand to the ``leadcast`` subparsers."""
    parser = sub.add_parser(
        "validate",
        help="check a dataset against the data contracts; quarantine bad rows",
        description=(
            "Run the great-expectations suites of the four contract tables (custom fields\n"
            "from the manifest included) over a dataset directory. Every row that breaks a\n"
            "rule goes to a quarantine file with the rule and what to do; the run fails when\n"
            "a table has more bad rows than allowed."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="the dataset directory")
    parser.add_argument(
        "--max-bad-share",
        type=share,
        default=DEFAULT_MAX_BAD_SHARE,
        metavar="SHARE",
        help="largest share of bad rows a table may have and still pass (default: 0.01 = 1%%)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        metavar="PATH",
        help="where the quarantine and summaries go (default: DIR/validation)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.set_defaults(func=execute)


def _usage_error(message: str, as_json: bool) -> int:
    print(f"leadcast validate: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"ok": False, "exit_code": EXIT_USAGE, "error": message}))
    return EXIT_USAGE


def _print_human(report: ValidationReport) -> None:
    console = Console(highlight=False, soft_wrap=True)
    table = Table(title=f"leadcast validate {report.directory}")
    for name, justify in (
        ("table", "left"), ("rows", "right"), ("bad rows", "right"), ("bad share", "right"),
        ("status", "left"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name, t in report.tables.items():
        status = "[green]passed[/]" if t.passed else "[bold red]FAILED[/]"
        table.add_row(name, f"{t.rows:,}", f"{t.bad_rows:,}", f"{t.bad_share:.2%}", status)
    console.print(table)
    for t in report.tables.values():
        groups = t.rule_groups()
        for g in groups:
            console.print(f"  {t.table}.{g['column']}: {g['rows']:,} row(s) broke {g['rule']}")
        for issue in t.issues:
            kind = "failure" if issue.blocking else "warning"
            console.print(f"  {t.table}: table-level {kind} ({issue.rule}): {issue.message}")
    # plain print: these sentences name files and must not be wrapped or styled
    for message in report.messages():
        print(message)
    if report.passed:
        extra = (
            f"; {report.quarantined_rows:,} row(s) quarantined and left out of training"
            if report.quarantined_rows
            else ""
        )
        print(f"validation passed{extra}. Report: {report.summary_md}")
    else:
        print(
            f"validation FAILED for {', '.join(report.failing_tables)}. "
            f"Report: {report.summary_md}; quarantine: {report.report_dir / 'quarantine'}"
        )


def execute(args: argparse.Namespace) -> int:
    """Run ``leadcast validate``; 0 passed, 1 data failed its checks, 2 usage error."""
    directory = Path(args.directory)
    if not directory.is_dir():
        return _usage_error(f"{directory} is not a directory", args.json)
    try:
        read_manifest(directory)
    except FileNotFoundError as exc:
        return _usage_error(str(exc), args.json)
    except (ValidationError, ValueError) as exc:
        return _usage_error(f"{directory}/manifest.json is not a valid manifest: {exc}", args.json)
    from data_contracts.validation import ValidationSettings, validate_dataset

    settings = ValidationSettings(max_bad_share=args.max_bad_share, report_dir=args.report_dir)
    try:
        report = validate_dataset(directory, settings)
    except OSError as exc:  # e.g. the report directory cannot be written
        return _usage_error(str(exc), args.json)
    code = EXIT_OK if report.passed else EXIT_DATA_FAILED
    if args.json:
        payload = {"ok": report.passed, "exit_code": code, **report.to_dict()}
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        for name in report.failing_tables:  # stdout is for machines; tell the person too
            print(report.tables[name].message(report.report_dir), file=sys.stderr)
    else:
        _print_human(report)
    return code
