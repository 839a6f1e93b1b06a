"""Orchestration of the bookings forecast and its backtest: data → models → JSON / MLflow.

``forecast`` forecasts a period from a validated dataset with the champion close-time
model (or the stage-weighted rule when there is none, and says so), the dependence ``ρ``
and the confidence record of the newest backtest, and the stage-weighted baseline beside
it. ``backtest`` runs :func:`models.backtest.run_backtest` and logs it to MLflow (metrics,
the per-period record and the fan chart), where ``forecast`` and the service find it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from models import registry as R
from models.backtest import BacktestResult, BacktestSettings, run_backtest
from models.bookings import bookings_forecast, currency_of, data_fingerprint
from models.close_time import KIND as CLOSE_TIME
from models.close_time import CloseTimeModel
from models.forecast import DEFAULT_DRAWS, Period
from models.plots import backtest_fan_chart
from pipelines.registered import champion_or_reason
from pipelines.training import Progress, load_dataset, read_truth


def champion_close_time(
    registry: R.RegistrySettings,
) -> tuple[CloseTimeModel | None, str | None]:
    """The close-time champion, or ``None`` with the reason the forecast falls back."""
    return champion_or_reason(registry, CLOSE_TIME, CloseTimeModel.load)


def forecast(
    data_dir: Path,
    *,
    registry: R.RegistrySettings,
    period: Period,
    as_of: pd.Timestamp | None = None,
    target: float | None = None,
    target_count: float | None = None,
    quantiles: list[float] | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    progress: Progress = lambda _msg: None,
) -> dict[str, Any]:
    """The bookings forecast of ``period`` from a dataset directory with the registry's
    close-time champion (:func:`models.bookings.bookings_forecast`)."""
    progress("validating and loading the data")
    tables, _, _, data_end, _ = load_dataset(data_dir)
    model, fallback_reason = champion_close_time(registry)
    progress(f"reading the open pipeline and simulating {draws:,} draws")
    return bookings_forecast(
        tables,
        data_end=data_end,
        data_sha256=data_fingerprint(tables)["sha256"],
        model=model,
        fallback_reason=fallback_reason,
        registry=registry,
        period=period,
        as_of=as_of,
        target=target,
        target_count=target_count,
        quantiles=quantiles,
        draws=draws,
        seed=seed,
    )


def backtest(
    data_dir: Path,
    *,
    registry: R.RegistrySettings,
    settings: BacktestSettings | None = None,
    progress: Progress = lambda _msg: None,
) -> tuple[BacktestResult, str]:
    """Run the backtest on a dataset and log it to MLflow; returns it and the run id."""
    settings = settings or BacktestSettings()
    progress("validating and loading the data")
    tables, manifest, _, data_end, _ = load_dataset(data_dir)
    contract = manifest.contract()
    result = run_backtest(
        tables,
        data_end=data_end,
        settings=settings,
        deal_custom=list(contract["deals"].custom_columns),
        lead_custom=list(contract["leads"].custom_columns),
        progress=progress,
        # generated data: the oracle that knows each open deal's true law is scored too
        truth_deals=read_truth(Path(data_dir), manifest, "deals"),
    )
    progress("logging the backtest to MLflow")
    fingerprint = data_fingerprint(tables)
    currency = currency_of(tables["deals"])
    record = {
        "summary": result.summary,
        "periods": result.periods,
        "cutoffs": result.cutoffs,
        "currency": currency,
        "dataset": str(Path(data_dir).resolve()),
    }
    run_id = R.log_backtest(
        registry,
        record=record,
        params={"backtest": settings.model_dump(mode="json")},
        metrics={k: v for k, v in result.summary.items() if isinstance(v, int | float | dict)},
        data_fingerprint=fingerprint,
        plots={
            "backtest_fan": backtest_fan_chart(
                result.periods, currency=currency, title=f"Bookings per {settings.freq}"
            )
        },
        tags={R.TAG_FREQ: settings.freq, R.TAG_DATASET: str(Path(data_dir).resolve())},
    )
    return result, run_id


__all__ = ["backtest", "champion_close_time", "forecast"]
