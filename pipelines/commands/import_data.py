"""``leadcast import``: turn a CRM export into a validated Leadcast dataset via a YAML mapping."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from data_contracts.mapping import MappingError
from data_contracts.storage import SchemaError
from pipelines.cli import EXIT_DATA_FAILED, EXIT_OK, EXIT_USAGE
from pipelines.commands.arguments import share
from pipelines.importing import ISSUES_FILE, ImportReport, run_import

EPILOG = """\
Examples:
  leadcast import --mapping examples/mappings/olist.yaml \\
      --source-dir ../shared/data/olist_marketing_funnel --out data/olist
  leadcast import --mapping crm/zoho.yaml --out data/zoho --format csv --overwrite

The mapping format: examples/mappings/README.md.
Exit codes: 0 imported and valid; 1 imported but more rows failed validation than allowed
(see the quarantine); 2 bad mapping, missing file, or columns/values the mapping does not
cover (nothing written).
"""


def register(sub: Any) -> None:
    """Add the ``import`` subcommand to the ``leadcast`` subparsers."""
    parser = sub.add_parser(
        "import",
        help="import a CRM export (CSV/Parquet) through a YAML mapping into a dataset",
        description=(
            "Read the CSV/Parquet files a mapping names, map them to the four contract tables "
            "(leads, deals, activities, stage_history), write a dataset directory and "
            "validate it."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--mapping", required=True, type=Path, metavar="FILE", help="the mapping YAML file"
    )
    parser.add_argument(
        "--source-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory the mapping's source paths are relative to (default: the mapping's)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="dataset directory to write"
    )
    parser.add_argument(
        "--format", choices=("parquet", "csv"), default="parquet", help="table file format"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a dataset already in --out"
    )
    parser.add_argument(
        "--max-bad-share",
        type=share,
        default=None,
        metavar="SHARE",
        help="fail when a table has more than this share of bad rows (default 0.01 = 1%%)",
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="write the dataset without validating it"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Run the import; 0 ok, 1 validation failed over the threshold, 2 bad input."""
    progress = None if args.json else (lambda msg: print(f"… {msg}", file=sys.stderr))
    try:
        report = run_import(
            args.mapping,
            args.out,
            source_dir=args.source_dir,
            file_format=args.format,
            overwrite=args.overwrite,
            validate=not args.no_validate,
            max_bad_share=args.max_bad_share,
            progress=progress,
        )
    except (MappingError, SchemaError, FileNotFoundError, FileExistsError) as exc:
        print(f"leadcast import: error: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
        return EXIT_USAGE
    passed = report.passed
    if args.json:
        print(json.dumps(_as_json(report, passed), ensure_ascii=False, indent=2, default=str))
    else:
        _print_summary(report, passed)
    return EXIT_OK if passed is not False else EXIT_DATA_FAILED


def _as_json(report: ImportReport, passed: bool | None) -> dict[str, Any]:
    validation = report.validation
    summary = (
        validation.to_dict() if validation is not None and hasattr(validation, "to_dict") else None
    )
    return {
        "ok": passed is not False,
        "out": str(report.out_dir),
        "source": report.manifest.source,
        "currency": report.manifest.currency,
        "rows": report.rows,
        "unreadable_values": report.parse_issues,
        "problems": [
            {
                "severity": p.severity,
                "table": p.table,
                "column": p.column,
                "message": p.message,
                "count": p.count,
                "example_rows": list(p.examples),
            }
            for p in report.problems
        ],
        "validation": {
            "passed": passed,
            "skipped": report.validation_skipped,
            "unreadable_rows_not_quarantined": report.unquarantined_issue_rows,
            "report": summary,
        },
    }


def _print_summary(report: ImportReport, passed: bool | None) -> None:
    print(f"imported {report.manifest.source} into {report.out_dir}")
    for table, n in report.rows.items():
        print(f"  {table:<14} {n:>10,} rows")
    for p in report.problems:
        print(f"  {p}")
    if report.parse_issues:
        print(
            f"  {report.parse_issues:,} value(s) could not be read; they are listed in "
            f"{report.out_dir / ISSUES_FILE}"
        )
    if report.validation is None:
        print(f"validation: skipped: {report.validation_skipped}")
        return
    print(report.validation.summary())
    for table, n in report.unquarantined_issue_rows.items():
        print(
            f"{table}: {n:,} more row(s) hold a value the mapping could not read "
            f"(see {report.out_dir / ISSUES_FILE}); counted against the threshold"
        )
    if passed is False and report.validation.passed:
        print("import FAILED: too many rows with unreadable values")
