"""Bookings forecast at scale: the Monte Carlo, and a full backtest.

1. **Monte Carlo**: 10,000 open deals × 10,000 draws (chances ~ Beta(1, 4), log-normal
   amounts, 300 expected new deals) with the dependence term on (``ρ = 0.05``): the
   median wall time of 5 runs after one warm-up, on 2 threads; and, in a separate run, the
   extra memory it allocates (``tracemalloc`` peak, which NumPy reports to). Beside it the
   naive float64 version (a ``draws × deals`` uniform matrix, compared and multiplied) as
   the reference.
2. **Backtest**: ``leadcast generate --leads 200000 --seed 7 --end-date 2026-10-31``, then
   the monthly backtest with the default settings; wall time, periods and the headline
   metrics (the acceptance figures of the forecast issue).

Targets (forecast issue): Monte Carlo ≤ 0.5 s and ≤ 64 MiB extra memory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from datetime import date

import numpy as np
import pandas as pd

from benchmarks.harness import Result, peak_rss_mib, timed
from models.backtest import BacktestResult, BacktestSettings, run_backtest
from models.forecast import ClosedDeals, ForecastInputs, NewDealLaw, OpenDeals, Period, simulate
from pipelines.demo_crm import GeneratedCRM, GeneratorConfig, generate

END_DATE = date(2026, 10, 31)


def synthetic_inputs(n: int, seed: int = 0) -> ForecastInputs:
    rng = np.random.default_rng(seed)
    text = np.full(n, "x", dtype=object)
    period = Period.from_days("2026-11-01", "2026-11-30")
    empty = np.zeros(0, dtype=object)
    return ForecastInputs(
        period=period,
        as_of=period.start,
        closed=ClosedDeals(empty, np.zeros(0), empty, empty, empty),
        open=OpenDeals(
            deal_id=text,
            amount=rng.lognormal(11.0, 1.2, n),
            p_won=rng.beta(1.0, 4.0, n),
            stage=text,
            owner=text,
            product=text,
            flags=np.full(n, "", dtype=object),
        ),
        new=NewDealLaw(3000.0, 0.1, rng.lognormal(10.5, 1.0, 2000)),
        method="benchmark",
    )


def backtest_like_the_cli(
    crm: GeneratedCRM, data_end: pd.Timestamp, settings: BacktestSettings
) -> BacktestResult:
    """The backtest ``leadcast backtest`` runs on the written dataset: with the dataset's
    custom fields as features and the oracle from the truth, as
    :func:`pipelines.forecast.backtest` passes them."""
    contract = crm.manifest.contract()
    return run_backtest(
        crm.tables,
        data_end=data_end,
        settings=settings,
        deal_custom=list(contract["deals"].custom_columns),
        lead_custom=list(contract["leads"].custom_columns),
        truth_deals=crm.truth["deals"],
    )


def naive(inputs: ForecastInputs, draws: int, seed: int) -> np.ndarray:
    """The textbook version: one float64 uniform per deal and draw, all at once."""
    rng = np.random.default_rng(seed)
    u = rng.random((draws, len(inputs.open.p_won)))
    return (u < inputs.open.p_won) @ inputs.open.booked_amount


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n_deals, n_draws = 10_000, 10_000
    leads = 20_000 if args.quick else 200_000

    inputs = synthetic_inputs(n_deals)
    simulate(inputs, rho=0.05, draws=n_draws, seed=0)  # warm-up
    times = []
    for seed in range(5):
        start = time.perf_counter()
        simulate(inputs, rho=0.05, draws=n_draws, seed=seed)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    simulate(inputs, rho=0.05, draws=n_draws, seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with timed() as t_naive:
        naive(inputs, n_draws, 0)
    tracemalloc.start()
    naive(inputs, n_draws, 0)
    _, naive_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    crm = generate(GeneratorConfig(leads=leads, seed=7, end_date=END_DATE))
    tables = crm.tables
    end = pd.Timestamp(END_DATE) + pd.Timedelta(days=1)
    with timed() as t_backtest:
        result = backtest_like_the_cli(crm, end, BacktestSettings())
    s = result.summary

    bench = Result(
        "bench_forecast",
        {
            "open_deals": n_deals,
            "draws": n_draws,
            "rho": 0.05,
            "threads": 2,
            "backtest_leads": leads,
            "backtest_seed": 7,
            "end_date": END_DATE.isoformat(),
            "backtest_settings": BacktestSettings().model_dump(mode="json"),
        },
    )
    bench.measurements |= {
        "monte_carlo_runs_seconds": [round(t, 4) for t in times],
        "naive_float64_seconds": round(t_naive.seconds, 3),
        "naive_float64_extra_mib": round(naive_peak / 2**20, 1),
        "backtest_seconds": round(t_backtest.seconds, 1),
        "backtest_deals": len(tables["deals"]),
        "backtest_periods": s["n_periods"],
        "backtest_retrainings": len(result.cutoffs),
        "coverage_50": s["coverage_50"],
        "coverage_80": s["coverage_80"],
        "crps": s["crps"],
        "baseline_crps": s["baseline"]["crps"],
        "crps_skill_vs_baseline": s["crps_skill_vs_baseline"],
        "mape_p50": s["mape_p50"],
        "baseline_mape_p50": s["baseline"]["mape_p50"],
        "rho": s["rho"],
        "level": s["level"],
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    bench.check("monte_carlo_seconds", statistics.median(times), at_most=0.5)
    bench.check("monte_carlo_extra_mib", peak / 2**20, at_most=64.0)
    bench.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
