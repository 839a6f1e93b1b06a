"""Measuring one benchmark: wall time and peak memory, written as JSON.

Each benchmark runs in its own process (``python -m benchmarks.<name>``) so that its peak
resident memory is its own and not the runner's.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    """Current resident set size in MiB, from /proc (falls back to the peak)."""
    try:
        with Path("/proc/self/statm").open() as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mib()


@dataclass
class Timing:
    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    t = Timing()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start


@dataclass
class Result:
    """One benchmark's record: what was measured, the targets, and whether they were met."""

    name: str
    params: dict[str, Any]
    measurements: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)
    passed: dict[str, bool] = field(default_factory=dict)

    def check(self, key: str, value: float, *, at_most: float) -> None:
        self.measurements[key] = round(value, 4)
        self.targets[key] = {"at_most": at_most}
        self.passed[key] = value <= at_most

    def write(self, out_dir: Path = RESULTS_DIR) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "name": self.name,
            "params": self.params,
            "measurements": self.measurements,
            "targets": self.targets,
            "passed": self.passed,
            "all_passed": all(self.passed.values()) if self.passed else None,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        path = out_dir / f"{self.name}.json"
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(record, indent=2))
        return path
