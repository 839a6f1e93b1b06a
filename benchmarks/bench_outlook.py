"""Close-time outlook at scale: scoring 100,000 open deals with a trained model.

The model is trained on a modest history (100k leads, seed 7, ``max_rounds=300``; the
training is not what is measured). The deals to score come from a separate, larger history
of the same generator (seed 8, 640k leads, ~100k deals, ending 2026-10-31): the deals open
at ``as_of`` dates every 14 days going back from the end of the history (the same
``open_deals_at`` a batch outlook uses), concatenated newest first until 100,000 rows, so
each row is a real point-in-time open-deal snapshot (a deal can appear at several dates,
each time with its own ``as_of``). The model never saw this history; reps it does not know
get its unknown-owner fallback, as new reps would.

Timed end to end: ``model.outlook_table(snapshots, tables)`` (features, hazards,
calibration, quantiles, risk flags, the table); and separately, on the same rows, the
feature building plus encoding and the ``hazards`` (LightGBM prediction of every weekly
row) alone.

Targets (close-time issue): outlook ≤ 5 minutes for 100k deals on 2 cores, peak memory ≤ 8 GiB.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from benchmarks.bench_train_close_time import END_DATE, customs, train_close_time
from benchmarks.harness import Result, current_rss_mib, peak_rss_mib, timed
from models.close_time import CloseTimeSettings, open_deals_at
from models.conversion_training import data_end_of
from pipelines.demo_crm import GeneratorConfig, generate

TRAIN_SEED = 7
SCORE_SEED = 8
EVERY_DAYS = 14


def open_snapshots(deals: pd.DataFrame, end: pd.Timestamp, n: int) -> tuple[pd.DataFrame, int]:
    """``n`` open-deal rows: the deals open at ``end - 1 day``, ``end - 15 days``, … (newest
    first) until there are ``n``; returns them and the number of ``as_of`` dates used."""
    frames: list[pd.DataFrame] = []
    total, dates = 0, 0
    as_of = end - pd.Timedelta(days=1)
    start = pd.Timestamp(deals["created_at"].min())
    while total < n and as_of > start:
        frame = open_deals_at(deals, as_of)
        frames.append(frame)
        total += len(frame)
        dates += 1
        as_of -= pd.Timedelta(days=EVERY_DAYS)
    if total < n:
        raise ValueError(f"only {total} open-deal rows in the history, {n} wanted")
    return pd.concat(frames, ignore_index=True).iloc[:n].reset_index(drop=True), dates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n_deals = 5_000 if args.quick else 100_000
    train_leads = 20_000 if args.quick else 100_000
    score_leads = 40_000 if args.quick else 640_000

    train_crm = generate(GeneratorConfig(leads=train_leads, seed=TRAIN_SEED, end_date=END_DATE))
    deal_custom, lead_custom = customs(train_crm)
    settings = CloseTimeSettings(max_rounds=300)
    with timed() as t_train:
        fitted = train_close_time(train_crm.tables, deal_custom, lead_custom, settings).fitted
    model = fitted.model
    del train_crm

    crm = generate(GeneratorConfig(leads=score_leads, seed=SCORE_SEED, end_date=END_DATE))
    tables = crm.tables
    snapshots, n_dates = open_snapshots(tables["deals"], data_end_of(tables), n_deals)
    rss_before = peak_rss_mib()

    with timed() as t_outlook:
        table, flags = model.outlook_table(snapshots, tables)
    rss_outlook = peak_rss_mib()
    with timed() as t_feat:
        matrix = model.encoder.transform(model.features(snapshots, tables))
    with timed() as t_haz:
        model.hazards(matrix)
    assert len(table) == n_deals and len(flags) == n_deals

    result = Result(
        "bench_outlook",
        {
            "deals": n_deals,
            "train_leads": train_leads,
            "train_seed": TRAIN_SEED,
            "score_leads": score_leads,
            "score_seed": SCORE_SEED,
            "end_date": END_DATE.isoformat(),
            "as_of_dates": n_dates,
            "as_of_every_days": EVERY_DAYS,
            "model_settings": {"max_rounds": settings.max_rounds},
        },
    )
    result.measurements |= {
        "train_seconds": round(t_train.seconds, 2),
        "best_iteration": fitted.best_iteration,
        "trees": model.booster.num_trees(),
        "horizon_weeks": model.horizon_weeks,
        "weekly_rows_predicted": n_deals * model.horizon_weeks,
        "deals_per_second": round(n_deals / t_outlook.seconds),
        "feature_seconds": round(t_feat.seconds, 2),
        "hazards_seconds": round(t_haz.seconds, 2),
        "hazards_share_of_outlook": round(t_haz.seconds / t_outlook.seconds, 3),
        "flagged_share": round(float((table["flags"] != "").mean()), 4),
        "peak_rss_mib_before_outlook": round(rss_before, 1),
        "peak_rss_mib_after_outlook": round(rss_outlook, 1),
        "rss_mib_end": round(current_rss_mib(), 1),
    }
    result.check("outlook_seconds", t_outlook.seconds, at_most=300.0)
    result.check("peak_rss_mib", peak_rss_mib(), at_most=8 * 1024.0)
    result.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
