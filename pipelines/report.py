"""Orchestration of the static review report: data + registry → one HTML file.

``review_report`` loads a validated dataset, the registry's champions (each falling back
as the service would: the stage-weighted forecast without a close-time model, no grade
check without a conversion model), and renders the same page as the service's ``GET /ui``
with the period picker disabled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from models import registry as R
from models.bookings import data_fingerprint
from models.close_time import KIND as CLOSE_TIME
from models.conversion import KIND as CONVERSION
from models.conversion import ConversionModel
from models.forecast import DEFAULT_DRAWS, Period
from models.review import (
    ReviewSources,
    health_from_registry,
    render_review,
    resolve_period,
    review_content,
)
from models.review.formatting import Lang
from pipelines.forecast import champion_close_time
from pipelines.registered import champion_or_reason
from pipelines.training import Progress, load_dataset


def review_report(
    data_dir: Path,
    *,
    registry: R.RegistrySettings,
    period: Period | None = None,
    choice: str = "month",
    target: float | None = None,
    as_of: pd.Timestamp | None = None,
    lang: Lang = "en",
    draws: int = DEFAULT_DRAWS,
    progress: Progress = lambda _msg: None,
) -> tuple[str, dict[str, Any]]:
    """The review page of ``period`` (default: the month of ``as_of``, which defaults to
    the end of the history) as a self-contained HTML string, and the content it shows."""
    progress("validating and loading the data")
    tables, _, _, data_end, _ = load_dataset(data_dir)
    seen_at = data_end if as_of is None else as_of
    progress("loading the champions from the registry")
    close_time, close_reason = champion_close_time(registry)
    conversion, conversion_reason = champion_or_reason(registry, CONVERSION, ConversionModel.load)
    health = health_from_registry(
        registry,
        {
            CONVERSION: (conversion is not None, conversion_reason),
            CLOSE_TIME: (close_time is not None, close_reason),
        },
    )
    sources = ReviewSources(
        tables=tables,
        data_end=data_end,
        data_sha256=str(data_fingerprint(tables)["sha256"]),
        close_time=close_time,
        close_time_reason=close_reason,
        conversion=conversion,
        registry=registry,
        health=health,
    )
    progress(f"forecasting and simulating {draws:,} draws; building the sales reports")
    content = review_content(
        sources,
        period=period or resolve_period(choice, seen_at),
        choice=choice if period is None else "custom",
        target=target,
        as_of=as_of,
        draws=draws,
    )
    progress("drawing the charts")
    return render_review(content, lang=lang, static=True), content


__all__ = ["review_report"]
