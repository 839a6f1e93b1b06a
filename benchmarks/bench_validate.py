"""Validation throughput: all four tables of a 1M-lead dataset through the GX suites.

The dataset is generated first (not timed); validation then runs in this process, whose
peak memory is measured after the generator's frames are released... so the generation
happens in a child process. Target (foundation issue): ≤ 3 minutes, peak ≤ 6 GiB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import Result, peak_rss_mib, timed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    leads = 20_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "generate", "--leads", str(leads),
             "--seed", "7", "--end-date", "2026-10-31", "--out", str(data)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        from data_contracts.validation import validate_dataset

        with timed() as t:
            report = validate_dataset(data)
        result = Result("bench_validate", {"leads": leads})
        result.measurements |= {
            "passed": report.passed,
            "rows": {name: tr.rows for name, tr in report.tables.items()},
        }
        result.check("seconds", t.seconds, at_most=180.0)
        result.check("peak_rss_mib", peak_rss_mib(), at_most=6 * 1024.0)
        result.write()
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
