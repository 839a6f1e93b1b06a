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

import numpy as np
import pandas as pd

from data_contracts import tables as T
from models import registry as R
from models.backtest import BacktestResult, BacktestSettings, run_backtest
from models.bundle import fingerprint_frames
from models.close_time import KIND as CLOSE_TIME
from models.close_time import CloseTimeModel
from models.forecast import (
    DEFAULT_DRAWS,
    ForecastInputs,
    Period,
    breakdown,
    drivers,
    simulate,
    summarize,
)
from models.forecast_inputs import model_inputs, snapshot_pipeline, stage_weighted_inputs
from models.plots import backtest_fan_chart
from models.stage_weighted import METHOD as STAGE_WEIGHTED
from models.stage_weighted import stage_win_rates
from pipelines.close_time import load_version
from pipelines.training import Progress, load_dataset

#: ρ used before any backtest has measured it (a mild dependence; the output says so).
RHO_PRIOR = BacktestSettings().rho_prior
NO_BACKTEST = "prior: no backtest yet (run `leadcast backtest --data DIR`)"
#: Summary keys of a backtest that a forecast carries as its confidence statement.
CONFIDENCE_KEYS = (
    "n_periods", "coverage_50", "coverage_80", "crps", "mape_p50", "accuracy",
    "crps_skill_vs_baseline", "freq", "first_period", "last_period", "rho", "level",
)  # fmt: skip
_TABLES = ("deals", "stage_history", "activities")


def data_fingerprint(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The fingerprint that ties a backtest to the data it ran on."""
    return fingerprint_frames({k: tables[k] for k in _TABLES})


def currency_of(deals: pd.DataFrame) -> str:
    """The dataset's currency (the most common one; amounts are never converted)."""
    values = deals[T.CURRENCY].dropna().astype("str") if T.CURRENCY in deals else pd.Series()
    return str(values.mode().iloc[0]) if len(values) else ""


def _champion(registry: R.RegistrySettings) -> tuple[CloseTimeModel | None, str | None]:
    if R.champion(registry, CLOSE_TIME) is None:
        return None, (
            "no deal-close-time champion in the registry: train one with "
            "`leadcast train close-time --data DIR`"
        )
    try:
        return load_version(registry, R.CHAMPION), None
    except Exception as exc:  # a broken bundle must not stop the forecast
        return None, f"the deal-close-time champion could not be loaded ({exc})"


def _confidence(
    registry: R.RegistrySettings, period: Period, sha: str
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    freq = "quarter" if (period.end - period.start).days >= 80 else "month"
    for kwargs in ({"freq": freq, "data_sha256": sha}, {"data_sha256": sha}, {}):
        record = R.latest_backtest(registry, **kwargs)
        if record is not None:
            summary = record["summary"]
            same = kwargs.get("data_sha256") is not None
            confidence = {
                **{k: summary.get(k) for k in CONFIDENCE_KEYS},
                "baseline": summary.get("baseline"),
                "run_id": record.get("run_id"),
                "logged_at": record.get("logged_at"),
                "same_data": same,
                "periods": record.get("periods", []),
            }
            source = f"backtest run {record.get('run_id')} ({summary.get('freq')})"
            if not same:
                source += ", run on other data"
            calibration = {
                "rho": float(summary["rho"]),
                "level": float(summary.get("level", 1.0)),
                "source": source,
            }
            return confidence, calibration
    return None, {"rho": RHO_PRIOR, "level": 1.0, "source": NO_BACKTEST}


def forecast_report(
    inputs: ForecastInputs,
    baseline: ForecastInputs,
    *,
    rho: float,
    level: float = 1.0,
    target: float | None,
    target_count: float | None = None,
    quantiles: list[float] | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> dict[str, Any]:
    """The forecast of ``inputs`` with the stage-weighted ``baseline`` beside it."""
    qs = list(quantiles or [])
    sim = simulate(inputs, rho=rho, level=level, draws=draws, seed=seed)
    base = simulate(baseline, rho=0.0, draws=draws, seed=seed)
    return {
        **summarize(sim.amount, qs, target),
        "target": target,
        "count": {
            **summarize(sim.count.astype(np.float64), qs, target_count),
            "target": target_count,
        },
        "breakdown": breakdown(inputs, sim),
        "drivers": drivers(inputs, sim),
        "baseline": {"method": STAGE_WEIGHTED, **summarize(base.amount, qs, target)},
        "draws": draws,
        "seed": seed,
        "notes": [*inputs.notes, *(n for n in baseline.notes if n not in inputs.notes)],
    }


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
    """The bookings forecast of ``period`` seen at ``as_of`` (default: the end of the
    history) as a JSON-ready dict (see ``leadcast forecast --help`` for the fields)."""
    progress("validating and loading the data")
    tables, _, _, data_end, _ = load_dataset(data_dir)
    as_of = data_end if as_of is None else as_of
    if as_of > data_end:
        raise ValueError(
            f"as-of {as_of.date()} is after the end of the history ({data_end.date()}): "
            "the data cannot say what is open then. Leave --as-of out to use the end."
        )
    model, fallback_reason = _champion(registry)
    progress("reading the open pipeline at as-of")
    snap = snapshot_pipeline(tables, as_of, period, model=model)
    rates = stage_win_rates(tables["deals"], tables["stage_history"], as_of)
    baseline = stage_weighted_inputs(snap, rates)
    inputs = model_inputs(snap, model, tables) if model is not None else baseline
    confidence, calibration = _confidence(registry, period, data_fingerprint(tables)["sha256"])
    if model is None:  # the calibration was measured for the model's forecast, not the rule's
        calibration = {"rho": 0.0, "level": 1.0, "source": "stage-weighted: independent deals"}
    progress(f"simulating {draws:,} draws")
    report = forecast_report(
        inputs,
        baseline,
        rho=calibration["rho"],
        level=calibration["level"],
        target=target,
        target_count=target_count,
        quantiles=quantiles,
        draws=draws,
        seed=seed,
    )
    return {
        "period": {"start": str(period.start.date()), "end": str(period.last_day.date())},
        "as_of": str(as_of),
        "method": inputs.method,
        "fallback_reason": fallback_reason,
        "model_version": None if model is None else model.meta.get("registered_version"),
        "currency": currency_of(tables["deals"]),
        **report,
        "calibration": calibration,
        "stage_win_rates": rates.to_dict(),
        "new_deals": None if inputs.new is None else inputs.new.detail,
        "confidence": confidence,
    }


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
                result.periods, currency=currency, title=f"Monthly bookings ({settings.freq})"
            )
        },
        tags={R.TAG_FREQ: settings.freq, R.TAG_DATASET: str(Path(data_dir).resolve())},
    )
    return result, run_id


__all__ = ["backtest", "currency_of", "data_fingerprint", "forecast", "forecast_report"]
