"""Conversion model at scale: feature building and LightGBM training on ~1M lead snapshots.

Target (conversion issue): training ≤ 2 minutes on 2 cores; time and peak memory recorded.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

import pandas as pd

from benchmarks.harness import Result, peak_rss_mib, timed
from features.lead_features import OwnerHistory, build_lead_features
from models.conversion import ConversionSettings, fit_conversion
from models.snapshots import LABEL, SnapshotSettings, assign_split, lead_snapshots, split_windows
from pipelines.demo_crm import GeneratorConfig, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    leads = 10_000 if args.quick else 320_000
    crm = generate(GeneratorConfig(leads=leads, seed=7, end_date=date(2026, 10, 31)))
    tables = crm.tables
    custom = list(crm.manifest.contract()["leads"].custom_columns)
    end = pd.Timestamp("2026-11-01")
    settings = SnapshotSettings()
    with timed() as t_snap:
        snaps = lead_snapshots(tables["leads"], end, settings)
        split = assign_split(snaps, split_windows(end, settings))
    with timed() as t_feat:
        feats = build_lead_features(
            snaps, tables["activities"], OwnerHistory.from_leads(tables["leads"]), custom
        )
    train, valid = (split == "train").to_numpy(), (split == "validation").to_numpy()
    y = snaps[LABEL].to_numpy()
    with timed() as t_fit:
        fitted = fit_conversion(
            feats[train], y[train], feats[valid], y[valid],
            owner_history=OwnerHistory.from_leads(tables["leads"]).aggregate(end),
            custom=custom, settings=ConversionSettings(),
        )  # fmt: skip
    result = Result("bench_train_conversion", {"leads": leads, "snapshots": len(snaps)})
    result.measurements |= {
        "snapshot_seconds": round(t_snap.seconds, 2),
        "feature_seconds": round(t_feat.seconds, 2),
        "feature_rows_per_second": round(len(snaps) / t_feat.seconds),
        "train_rows": int(train.sum()),
        "validation_rows": int(valid.sum()),
        "best_iteration": fitted.best_iteration,
    }
    result.check("training_seconds", t_fit.seconds, at_most=120.0)
    result.check("peak_rss_mib", peak_rss_mib(), at_most=6 * 1024.0)
    result.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
