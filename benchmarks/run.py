"""Run every benchmark, each in its own process, and gather their JSON into ``latest.json``.

Usage: ``python -m benchmarks.run [--only NAME ...] [--quick]``. ``--quick`` shrinks the
sizes (for trying the harness); the targets in the issues refer to the full sizes. The
studies (``STUDIES``: the forecast's calibration over several seeds, about 15 minutes)
run only when named with ``--only``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence

from benchmarks.harness import RESULTS_DIR

BENCHMARKS: tuple[str, ...] = (
    "bench_generate",
    "bench_validate",
    "bench_train_conversion",
    "bench_train_close_time",
    "bench_outlook",
    "bench_forecast",
    "bench_service",
)
#: Measurements too long for every ``make bench`` (run them with ``--only``).
STUDIES: tuple[str, ...] = ("bench_forecast_calibration",)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS + STUDIES, help="run only these")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    gathered = {}
    failed = []
    for name in names:
        cmd = [sys.executable, "-m", f"benchmarks.{name}"] + (["--quick"] if args.quick else [])
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0:
            failed.append(name)
            continue
        gathered[name] = json.loads((RESULTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    (RESULTS_DIR / "latest.json").write_text(json.dumps(gathered, indent=2) + "\n")
    missed = [n for n, r in gathered.items() if r.get("all_passed") is False]
    print(
        f"wrote {RESULTS_DIR / 'latest.json'}; crashed: {failed or 'none'}; "
        f"missed targets: {missed or 'none'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
