"""Generator throughput: ``leadcast generate`` of 1M leads, in memory and written as Parquet.

Target (foundation issue): 1M leads in ≤ 2 minutes on 2 cores, peak memory ≤ 6 GiB.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

from benchmarks.harness import Result, peak_rss_mib, timed
from pipelines.demo_crm import GeneratorConfig, generate, write_generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    leads = 20_000 if args.quick else 1_000_000
    result = Result("bench_generate", {"leads": leads, "seed": 7, "end_date": "2026-10-31"})
    with tempfile.TemporaryDirectory() as tmp, timed() as total:
        with timed() as gen:
            crm = generate(GeneratorConfig(leads=leads, seed=7, end_date=date(2026, 10, 31)))
        with timed() as write:
            write_generated(crm, Path(tmp) / "data")
    result.measurements |= {
        "generate_seconds": round(gen.seconds, 2),
        "write_seconds": round(write.seconds, 2),
        "rows": {k: len(v) for k, v in crm.tables.items()},
        "leads_per_second": round(leads / total.seconds),
    }
    result.check("total_seconds", total.seconds, at_most=120.0)
    result.check("peak_rss_mib", peak_rss_mib(), at_most=6 * 1024.0)
    result.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
