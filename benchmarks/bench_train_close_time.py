"""Close-time model at scale: deal snapshots, features and weekly-hazard training on ~200k deals.

The generator gives about 6.3 leads per deal, so ~1.26M leads (seed 7, history ending
2026-10-31) make ~200,000 deals; the real deal count is reported. Snapshot building
(``split_snapshots``), feature building (train + validation snapshots, the test part is
not needed to fit) and ``fit_close_time`` (encoder, weekly rows, LightGBM with early
stopping, calibration) are timed separately, with the peak resident memory after each.

Targets (close-time issue): training ≤ 15 minutes on 2 cores, peak memory ≤ 12 GiB.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import Result, peak_rss_mib, timed
from data_contracts.spec import Column
from features.deal_features import OwnerDealHistory, build_close_time_features
from models.close_time import CloseTimeSettings, FittedCloseTime, fit_close_time
from models.conversion_training import data_end_of
from models.deal_snapshots import (
    EVENT,
    TIME,
    DealSnapshotSettings,
    deal_windows,
    person_period,
    split_snapshots,
)
from models.risk_flags import fit_stage_dwell, load_risk_flag_config
from pipelines.demo_crm import GeneratedCRM, GeneratorConfig, generate

SEED = 7
END_DATE = date(2026, 10, 31)


def customs(crm: GeneratedCRM) -> tuple[list[Column], list[Column]]:
    """The deal and lead custom columns of a generated dataset (as the pipeline reads them)."""
    contract = crm.manifest.contract()
    return list(contract["deals"].custom_columns), list(contract["leads"].custom_columns)


@dataclass
class CloseTimeBench:
    """What one training pass measured, and the fitted model."""

    fitted: FittedCloseTime
    timings: dict[str, float]
    rss_after: dict[str, float]
    rows: dict[str, Any]


def train_close_time(
    tables: dict[str, pd.DataFrame],
    deal_custom: list[Column],
    lead_custom: list[Column],
    model_settings: CloseTimeSettings,
) -> CloseTimeBench:
    """The training path of ``models.close_time_training`` (no baselines, no test metrics),
    each stage timed: snapshots → features (train + validation) → ``fit_close_time``."""
    deals = tables["deals"]
    end = data_end_of(tables)
    snap_settings = DealSnapshotSettings()
    windows = deal_windows(end, snap_settings)
    timings: dict[str, float] = {}
    rss: dict[str, float] = {}

    with timed() as t:
        parts = split_snapshots(deals, windows, snap_settings)
    timings["snapshot_seconds"] = t.seconds
    rss["snapshots"] = peak_rss_mib()

    with timed() as t:
        owner_deals = OwnerDealHistory.from_deals(deals)
        x = {
            k: build_close_time_features(
                parts[k],
                leads=tables["leads"],
                stage_history=tables["stage_history"],
                activities=tables["activities"],
                owner_deals=owner_deals,
                deal_custom=deal_custom,
                lead_custom=lead_custom,
            )
            for k in ("train", "validation")
        }
    timings["feature_seconds"] = t.seconds
    rss["features"] = peak_rss_mib()

    with timed() as t:
        flag_config = load_risk_flag_config()
        dwell = fit_stage_dwell(deals, tables["stage_history"], before=end, config=flag_config)
    timings["stage_dwell_seconds"] = t.seconds

    horizon = snap_settings.horizon_weeks
    train, valid = parts["train"], parts["validation"]
    with timed() as t:
        fitted = fit_close_time(
            x["train"],
            train[TIME].to_numpy(),
            train[EVENT].to_numpy(),
            x["validation"],
            valid[TIME].to_numpy(),
            valid[EVENT].to_numpy(),
            owner_deals=owner_deals.aggregate(end),
            dwell=dwell,
            flag_config=flag_config,
            deal_custom=deal_custom,
            lead_custom=lead_custom,
            horizon_weeks=horizon,
            settings=model_settings,
        )
    timings["training_seconds"] = t.seconds
    rss["training"] = peak_rss_mib()

    def weekly_rows(part: pd.DataFrame) -> int:
        pp = person_period(part[TIME].to_numpy(), part[EVENT].to_numpy(), horizon)
        return len(pp.label)

    rows: dict[str, Any] = {
        "deals": len(deals),
        "snapshots": {k: len(v) for k, v in parts.items()},
        "weekly_rows": {k: weekly_rows(parts[k]) for k in ("train", "validation")},
        "features": len(fitted.model.feature_names),
    }
    return CloseTimeBench(fitted, timings, rss, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    leads = 20_000 if args.quick else 1_260_000
    with timed() as t_gen:
        crm = generate(GeneratorConfig(leads=leads, seed=SEED, end_date=END_DATE))
    rss_generated = peak_rss_mib()
    deal_custom, lead_custom = customs(crm)
    settings = CloseTimeSettings()
    bench = train_close_time(crm.tables, deal_custom, lead_custom, settings)
    result = Result(
        "bench_train_close_time",
        {
            "leads": leads,
            "seed": SEED,
            "end_date": END_DATE.isoformat(),
            "deals": bench.rows["deals"],
            "model_settings": settings.model_dump(mode="json"),
        },
    )
    timings = bench.timings
    rounds = min(bench.fitted.best_iteration + settings.early_stopping_rounds, settings.max_rounds)
    train_snaps = bench.rows["snapshots"]["train"] + bench.rows["snapshots"]["validation"]
    result.measurements |= {
        "generate_seconds": round(t_gen.seconds, 2),
        "snapshot_seconds": round(timings["snapshot_seconds"], 2),
        "feature_seconds": round(timings["feature_seconds"], 2),
        "feature_rows_per_second": round(train_snaps / max(timings["feature_seconds"], 1e-9)),
        "stage_dwell_seconds": round(timings["stage_dwell_seconds"], 2),
        "snapshots": bench.rows["snapshots"],
        "weekly_rows": bench.rows["weekly_rows"],
        "features": bench.rows["features"],
        "best_iteration": bench.fitted.best_iteration,
        # rounds run ≈ best + patience (early stopping), at most max_rounds
        "rounds_run_approx": rounds,
        "seconds_per_round_approx": round(timings["training_seconds"] / max(rounds, 1), 3),
        "peak_rss_mib_after": {
            "generate": round(rss_generated, 1),
            **{k: round(v, 1) for k, v in bench.rss_after.items()},
        },
        "calibration_slope_90d": float(
            np.round(bench.fitted.calibration_report["90d"]["slope"], 4)
        ),
    }
    result.check("training_seconds", timings["training_seconds"], at_most=15 * 60.0)
    result.check("peak_rss_mib", peak_rss_mib(), at_most=12 * 1024.0)
    result.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
