"""Calibration study of the bookings forecast: the monthly backtest on several seeds.

One backtest has about 27 monthly periods, too few to tell a calibrated forecast from a
slightly miscalibrated one: its 80% coverage has a 95% interval about 30 points wide
(:func:`models.backtest.coverage_check`). This study runs the backtest that ``leadcast
backtest`` runs (default settings, the dataset's custom fields as features) on
``leadcast generate --leads 200000 --seed S --end-date 2026-10-31`` for several seeds
``S`` — independent histories from the same generator — and pools the periods:

- per seed: the coverages, CRPS skill against the stage-weighted baseline, ρ and level;
- pooled: the coverage of the 50% and 80% intervals with their binomial check, the
  histogram of the PIT values (the share of draws below the actual; uniform when
  calibrated), and the same for the periods after the calibration warm-up alone;
- pooled over the seeds, the open deals' wins against their chances by size of deal
  (:func:`models.size_calibration.pool_bands`), over all periods and the recent ones: one
  history's large deals are too few to tell a bias from noise;
- ``p_band_if_calibrated``: the chance that a perfectly calibrated forecaster (PIT i.i.d.
  uniform) lands both coverages inside the forecast issue's bands (45–55%, 75–85%) on one
  backtest with that many periods — what a single backtest can and cannot show;
- the oracle that knows each open deal's true law (:mod:`models.forecast_oracle`), per
  seed and pooled, the same way: its CRPS is about the best reachable, and whether its
  coverages land inside the bands shows the same thing on the very histories.

No targets are checked: this is a measurement. It takes about 3 minutes per seed on 2
cores (``--quick``: 20,000 leads and two seeds). Not in the default ``make bench``; run it
with ``make calibration``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from math import comb
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.bench_forecast import backtest_like_the_cli
from benchmarks.harness import Result, timed
from models.backtest import BacktestSettings, summary_metrics
from models.size_calibration import pool_bands
from pipelines.demo_crm import GeneratorConfig, generate

END_DATE = date(2026, 10, 31)
#: Seed 7 is the forecast issue's acceptance data. Changes to the forecast are chosen on
#: seeds 11, 13, 17 and 19 only; these five were first run after the recalibration had been
#: chosen, and the study's earlier results were known when the prior ρ was lowered, so
#: ``--seeds`` with seeds no run has used gives the cleanest held-out figures.
SEEDS = (7, 23, 29, 31, 37)
#: The forecast issue's acceptance bands for the coverage of the 50% and 80% intervals.
BANDS = {"50": (0.45, 0.55), "80": (0.75, 0.85)}


def p_band_if_calibrated(n: int, bands: dict[str, tuple[float, float]] = BANDS) -> float:
    """P(both coverages inside their bands) on ``n`` periods with uniform, independent PIT.

    A period falls in the central 50% interval with chance 0.5, in the 80% interval but not
    the 50% one with 0.3, outside both with 0.2: a multinomial, summed exactly."""
    (lo50, hi50), (lo80, hi80) = bands["50"], bands["80"]
    total = 0.0
    for a in range(n + 1):
        if not lo50 <= a / n <= hi50:
            continue
        for b in range(n - a + 1):
            if lo80 <= (a + b) / n <= hi80:
                total += comb(n, a) * comb(n - a, b) * 0.5**a * 0.3**b * 0.2 ** (n - a - b)
    return total


def inside_bands(summary: dict[str, Any]) -> bool:
    """Whether both coverages of a backtest summary lie inside the issue's bands."""
    return all(lo <= summary[f"coverage_{k}"] <= hi for k, (lo, hi) in BANDS.items())


def pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`models.backtest.summary_metrics` of pooled period scores (coverage with its
    check, CRPS, MAPE, mean PIT), with the histogram of their PIT values by tenths."""
    counts, _ = np.histogram([r["pit"] for r in rows], bins=10, range=(0.0, 1.0))
    return summary_metrics(rows) | {"pit_deciles": counts.tolist()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 leads, two seeds")
    parser.add_argument("--seeds", type=int, nargs="*", help=f"default {SEEDS}")
    args = parser.parse_args(argv)
    leads = 20_000 if args.quick else 200_000
    seeds = tuple(args.seeds or (SEEDS[:2] if args.quick else SEEDS))
    settings = BacktestSettings()
    end = pd.Timestamp(END_DATE) + pd.Timedelta(days=1)
    per_seed: dict[str, Any] = {}
    all_rows: list[dict[str, Any]] = []
    calibrated_rows: list[dict[str, Any]] = []
    oracle_rows: list[dict[str, Any]] = []
    sizes: dict[str, list[Any]] = {"all": [], "recent": []}
    for seed in seeds:
        print(f"seed {seed}: generating {leads:,} leads and backtesting", flush=True)
        crm = generate(GeneratorConfig(leads=leads, seed=seed, end_date=END_DATE))
        with timed() as t:
            result = backtest_like_the_cli(crm, end, settings)
        s = result.summary
        rows = [p["model"] for p in result.periods]
        warm = settings.min_periods_for_fit
        all_rows += rows
        oracle_rows += [p["oracle"] for p in result.periods]
        calibrated_rows += rows[warm:]
        for pool, bands in sizes.items():
            bands.append(s["open_by_size"][pool])
        per_seed[str(seed)] = {
            "n_periods": s["n_periods"],
            "coverage_50": s["coverage_50"],
            "coverage_80": s["coverage_80"],
            "after_calibration_warmup": {
                k: s["after_calibration_warmup"].get(k)
                for k in ("n_periods", "coverage_50", "coverage_80")
            },
            "crps_skill_vs_baseline": s["crps_skill_vs_baseline"],
            "rho": s["rho"],
            "level": s["level"],
            "inside_bands": inside_bands(s),
            "p_band_if_calibrated": p_band_if_calibrated(s["n_periods"]),
            "pit": [round(r["pit"], 4) for r in rows],
            "oracle": {
                "coverage_50": s["oracle"]["coverage_50"],
                "coverage_80": s["oracle"]["coverage_80"],
                "crps_over_model": s["oracle"]["crps"] / s["crps"],
                "inside_bands": inside_bands(s["oracle"]),
                "pit": [round(p["oracle"]["pit"], 4) for p in result.periods],
            },
            "backtest_seconds": round(t.seconds, 1),
        }
    bench = Result(
        "bench_forecast_calibration",
        {
            "leads": leads,
            "seeds": list(seeds),
            "end_date": END_DATE.isoformat(),
            "bands": BANDS,
            "backtest_settings": settings.model_dump(mode="json"),
        },
    )
    bench.measurements |= {
        "per_seed": per_seed,
        "pooled": pooled(all_rows),
        "pooled_after_calibration_warmup": pooled(calibrated_rows),
        "seeds_inside_bands": sum(v["inside_bands"] for v in per_seed.values()),
        "oracle": pooled(oracle_rows),
        "oracle_seeds_inside_bands": sum(v["oracle"]["inside_bands"] for v in per_seed.values()),
        "open_by_size": {pool: pool_bands(bands) for pool, bands in sizes.items()},
    }
    bench.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
