"""What the review page shows, gathered in one JSON-ready dict: one path for ``GET /ui``
and ``leadcast report``.

:func:`review_content` runs the same forecast as ``POST /v1/forecast`` (the same function,
draws and seed, so the page's numbers equal the API's for the same period and target) and
adds the quantiles its chart is drawn from, the backtest record that says how far to trust
it, the models' health and the sales reports. :func:`health_from_registry` describes the
registry's champions for the offline report (the service describes what it has loaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from models import registry as R
from models.bookings import bookings_forecast
from models.close_time import KIND as CLOSE_TIME
from models.close_time import CloseTimeModel
from models.conversion import KIND as CONVERSION
from models.conversion import ConversionModel
from models.forecast import DEFAULT_DRAWS, Period
from models.review.charts import DENSITY_LEVELS
from models.review.formatting import SYMBOLS
from models.sales_reports import (
    model_grade_report,
    owner_report,
    source_report,
    stage_funnel,
)

#: the sales reports cover the deals and leads created in this many days before as_of
REPORT_WINDOW_DAYS = 365


@dataclass(frozen=True)
class ReviewSources:
    """Where the page's figures come from: the loaded history and the models that serve.

    ``health``: one description per model kind, as :meth:`ServedModel.describe` gives it
    (``kind``, ``serving`` = model | rules, ``version``, ``source``, ``reason``,
    ``trained_at``, ``training_window``)."""

    tables: dict[str, pd.DataFrame]
    data_end: pd.Timestamp
    data_sha256: str
    close_time: CloseTimeModel | None
    close_time_reason: str | None
    conversion: ConversionModel | None
    registry: R.RegistrySettings | None
    health: list[dict[str, Any]]


def health_from_registry(
    registry: R.RegistrySettings,
    loaded: dict[str, tuple[bool, str | None]],
) -> list[dict[str, Any]]:
    """The registry's champion of each kind as the page's health rows; ``loaded`` says per
    kind whether its champion could be loaded (and why not)."""
    rows = []
    for kind in (CONVERSION, CLOSE_TIME):
        ok, why = loaded.get(kind, (False, "not loaded"))
        try:
            champion = R.champion(registry, kind)
        except Exception as exc:  # an unreachable registry is shown, not raised
            champion, why = None, f"registry unreachable ({exc.__class__.__name__})"
        rows.append(
            {
                "kind": kind,
                "serving": "model" if ok and champion is not None else "rules",
                "version": None if champion is None else champion.version,
                "source": "registry" if champion is not None else None,
                "reason": None if ok else why,
                "trained_at": None if champion is None else champion.created_at.isoformat(),
                "training_window": None if champion is None else champion.training_window,
            }
        )
    return rows


def sales_content(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp,
    conversion: ConversionModel | None,
    *,
    window_days: int = REPORT_WINDOW_DAYS,
) -> dict[str, Any]:
    """The seed's sales reports as of ``as_of`` (only rows stamped before it): the stage
    funnel, conversion and revenue by lead source and the owners' follow-up, over leads and
    deals created in the ``window_days`` before ``as_of``; and the grade distribution with
    the observed conversion per grade, scored out of sample by the conversion champion
    (``None`` when there is none)."""
    start = as_of - pd.Timedelta(days=window_days)
    leads, deals = tables["leads"], tables["deals"]
    grades = None
    if conversion is not None:
        grades = model_grade_report(conversion, tables, as_of).to_dict()
    return {
        "window": {"start": str(start.date()), "end": str(as_of.date()), "days": window_days},
        "funnel": stage_funnel(deals, tables["stage_history"], as_of, start=start).to_dict(),
        "sources": source_report(leads, deals, as_of, start=start).to_dict(),
        "owners": owner_report(leads, deals, tables["activities"], as_of, start=start).to_dict(),
        "grades": grades,
    }


def review_content(
    sources: ReviewSources,
    *,
    period: Period,
    choice: str,
    target: float | None = None,
    as_of: pd.Timestamp | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    sales: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the page shows for ``period`` (``choice``: month | quarter | custom, for
    the picker) seen at ``as_of`` (default: the end of the history). The ``forecast`` block
    is :func:`models.bookings.bookings_forecast`'s report with the 1%..99% quantiles added.
    ``sales``: :func:`sales_content` when the caller has it already (the service caches
    it per ``as_of``); computed here otherwise. Raises ``ValueError`` for a period the
    forecast cannot cover (the message says why)."""
    forecast = bookings_forecast(
        sources.tables,
        data_end=sources.data_end,
        data_sha256=sources.data_sha256,
        model=sources.close_time,
        fallback_reason=sources.close_time_reason,
        registry=sources.registry,
        period=period,
        as_of=as_of,
        target=target,
        quantiles=list(DENSITY_LEVELS),
        draws=draws,
        seed=seed,
    )
    currency = str(forecast["currency"])
    if sales is None:
        seen_at = sources.data_end if as_of is None else as_of
        sales = sales_content(sources.tables, seen_at, sources.conversion)
    return {
        "as_of": forecast["as_of"],
        "period": {**forecast["period"], "choice": choice},
        "target": target,
        "currency": currency,
        "currency_symbol": SYMBOLS.get(currency.upper(), ""),
        "forecast": forecast,
        "health": sources.health,
        "sales": sales,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


__all__ = [
    "REPORT_WINDOW_DAYS",
    "ReviewSources",
    "health_from_registry",
    "review_content",
    "sales_content",
]
