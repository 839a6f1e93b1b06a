"""The bookings forecast of a period as a JSON-ready report: one path for the CLI and the
service.

:func:`bookings_forecast` takes loaded contract tables, the close-time model (or ``None``:
the stage-weighted rule then forecasts and ``method`` says so), and finds the calibration
(ρ, level, and the recalibration of the open deals' chances) and the confidence statement
in the newest backtest of the same data (:func:`confidence_record`); the stage-weighted
forecast is always reported beside it.

The recalibration was learnt on the backtest's models, which are retrained at cut-offs
on less history than the champion: it carries over to the champion only as far as the
champion errs in the same direction. The backtest's record says how it did there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data_contracts import tables as T
from models import registry as R
from models.backtest import BacktestSettings
from models.bundle import fingerprint_frames
from models.calibration import Calibrator
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
from models.forecast_inputs import (
    model_inputs,
    recalibrated,
    snapshot_pipeline,
    stage_weighted_inputs,
)
from models.stage_weighted import METHOD as STAGE_WEIGHTED
from models.stage_weighted import stage_win_rates

#: ρ used before any backtest has measured it (a mild dependence; the output says so).
RHO_PRIOR = BacktestSettings().rho_prior
NO_BACKTEST = "prior: no backtest yet (run `leadcast backtest --data DIR`)"
#: The calibration a forecast uses before any backtest has measured one.
PRIOR_CALIBRATION: dict[str, Any] = {
    "rho": RHO_PRIOR, "level": 1.0, "recalibration": None, "source": NO_BACKTEST,
}  # fmt: skip
#: Summary keys of a backtest that a forecast carries as its confidence statement.
CONFIDENCE_KEYS = (
    "n_periods", "coverage_50", "coverage_80", "crps", "mape_p50", "accuracy",
    "crps_skill_vs_baseline", "freq", "first_period", "last_period", "rho", "level",
    "coverage_check", "parts_actual", "open_by_size",
)  # fmt: skip
_TABLES = ("deals", "stage_history", "activities")


def data_fingerprint(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The fingerprint that ties a backtest to the data it ran on."""
    return fingerprint_frames({k: tables[k] for k in _TABLES})


def currency_of(deals: pd.DataFrame) -> str:
    """The dataset's currency (the most common one; amounts are never converted)."""
    values = deals[T.CURRENCY].dropna().astype("str") if T.CURRENCY in deals else pd.Series()
    return str(values.mode().iloc[0]) if len(values) else ""


def confidence_record(
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
                "recalibration": summary.get("recalibration"),
                "source": source,
            }
            return confidence, calibration
    return None, dict(PRIOR_CALIBRATION)


def recalibration_of(calibration: dict[str, Any]) -> Calibrator | None:
    """The Platt calibrator of a backtest's ``recalibration`` record (``{"a", "b",
    "n_periods", "n_deals"}``; :func:`models.backtest.fit_recalibration`), validated."""
    record = calibration.get("recalibration")
    if not record:
        return None
    return Calibrator.from_dict({"method": "platt", "a": record["a"], "b": record["b"]})


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


def bookings_forecast(
    tables: dict[str, pd.DataFrame],
    *,
    data_end: pd.Timestamp,
    data_sha256: str,
    model: CloseTimeModel | None,
    fallback_reason: str | None,
    registry: R.RegistrySettings | None,
    period: Period,
    as_of: pd.Timestamp | None = None,
    target: float | None = None,
    target_count: float | None = None,
    quantiles: list[float] | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> dict[str, Any]:
    """The bookings forecast of ``period`` seen at ``as_of`` (default: the end of the
    history) as a JSON-ready dict (see ``leadcast forecast --help`` for the fields).
    ``registry`` ``None`` (or unreachable) leaves the confidence statement out."""
    as_of = data_end if as_of is None else as_of
    if as_of > data_end:
        raise ValueError(
            f"as-of {as_of.date()} is after the end of the history ({data_end.date()}): "
            "the data cannot say what is open then. Leave as-of out to use the end."
        )
    snap = snapshot_pipeline(tables, as_of, period, model=model)
    rates = stage_win_rates(tables["deals"], tables["stage_history"], as_of)
    baseline = stage_weighted_inputs(snap, rates)
    confidence: dict[str, Any] | None = None
    calibration = dict(PRIOR_CALIBRATION)
    if registry is not None:
        try:
            confidence, calibration = confidence_record(registry, period, data_sha256)
        except Exception as exc:  # the registry is down: forecast without the record
            calibration["source"] += f"; the registry could not be read ({exc.__class__.__name__})"
    if model is None:  # the calibration was measured for the model's forecast, not the rule's
        calibration = {
            "rho": 0.0,
            "level": 1.0,
            "recalibration": None,
            "source": "stage-weighted: independent deals",
        }
        if confidence is not None and confidence.get("baseline"):
            # the record of the forecaster that serves: the backtest's stage-weighted block
            confidence = {
                **confidence,
                **confidence["baseline"],
                "forecaster": STAGE_WEIGHTED,
                "crps_skill_vs_baseline": None,
            }
    inputs = baseline
    if model is not None:
        inputs = model_inputs(snap, model, tables)
        calibrator = recalibration_of(calibration)
        if calibrator is not None:
            inputs = recalibrated(inputs, calibrator)
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


__all__ = [
    "CONFIDENCE_KEYS",
    "bookings_forecast",
    "confidence_record",
    "currency_of",
    "data_fingerprint",
    "forecast_report",
    "recalibration_of",
]
