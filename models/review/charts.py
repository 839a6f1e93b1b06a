"""The review page's charts as inline SVG, drawn server-side with matplotlib.

The charts carry numbers and dates only; their titles and legends are written by the page
in the reader's language (so no font for Chinese is needed here, and nothing is fetched
from the internet). Text stays text in the SVG (``svg.fonttype: none``) and element ids
are salted per chart so that several charts can share one page.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from models.plots import backtest_fan_chart

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MODEL: Final = "#1f5fa8"
TARGET: Final = "#c0392b"
#: quantile levels the distribution chart is drawn from (1%..99%)
DENSITY_LEVELS: Final[tuple[float, ...]] = tuple(round(q / 100, 2) for q in range(1, 100))


def to_svg(figure: Figure, salt: str) -> str:
    """The figure as an inline ``<svg>`` element scaled to its container's width."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    # let CSS size it: drop the fixed width/height, keep the viewBox
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", svg, count=1)


def _money_axis(ax: Any, axis: str, currency_symbol: str) -> None:
    from matplotlib.ticker import FuncFormatter

    def fmt(value: float, _pos: int) -> str:
        size = abs(value)
        for unit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if size >= unit:
                return f"{currency_symbol}{value / unit:g}{suffix}"
        return f"{currency_symbol}{value:g}"

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(FuncFormatter(fmt))


def distribution_chart(
    quantiles: Mapping[str, float],
    *,
    target: float | None,
    currency_symbol: str = "",
    size: tuple[float, float] = (7.2, 2.8),
) -> Figure:
    """The bookings distribution as a density read off its quantiles (``quantiles``: level
    → value, at least the 1%..99% levels of :data:`DENSITY_LEVELS`), with the 80% (P10–P90)
    and 50% (P25–P75) ranges shaded, P50 as a line and the target dashed."""
    from models.plots import _figure

    levels = np.array(sorted(float(k) for k in quantiles))
    values = np.array([quantiles[f"{q:g}"] for q in levels], dtype=np.float64)
    figure = _figure(*size)
    ax = figure.add_subplot()
    span = max(float(values[-1] - values[0]), 1e-9 * max(abs(float(values[-1])), 1.0))
    # density over windows of 5 quantile steps, Δq / Δx (a floor on Δx for point masses):
    # single 1% steps of a Monte Carlo quantile function are too noisy to differentiate
    k = min(5, len(values) - 1)
    dx = np.maximum(values[k:] - values[:-k], span / 400)
    density = (levels[k:] - levels[:-k]) / dx
    mids = (values[k:] + values[:-k]) / 2
    x = np.concatenate([[values[0]], mids, [values[-1]]])
    y = np.concatenate([[0.0], np.convolve(density, np.ones(3) / 3, mode="same"), [0.0]])
    ax.plot(x, y, color=MODEL, lw=1.5)

    def at(q: float) -> float:
        return float(np.interp(q, levels, values))

    for low, high, alpha in ((0.10, 0.90, 0.18), (0.25, 0.75, 0.30)):
        inside = (x >= at(low)) & (x <= at(high))
        ax.fill_between(x[inside], y[inside], color=MODEL, alpha=alpha, lw=0)
    ax.axvline(at(0.5), color=MODEL, lw=1.6)
    for q in (0.1, 0.9):
        ax.axvline(at(q), color=MODEL, lw=0.8, ls=":")
    if target is not None:
        ax.axvline(target, color=TARGET, lw=1.6, ls="--")
    low = min(at(0.01), target if target is not None else at(0.01))
    high = max(at(0.99), target if target is not None else at(0.99))
    pad = 0.05 * max(high - low, span)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(bottom=0)
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    _money_axis(ax, "x", currency_symbol)
    return figure


def backtest_chart(
    periods: Sequence[Mapping[str, object]],
    *,
    currency_symbol: str = "",
    size: tuple[float, float] = (7.2, 3.0),
) -> Figure:
    """Past forecasts' bands against what was booked (words left to the page)."""
    figure = backtest_fan_chart(periods, annotate=False, size=size)
    _money_axis(figure.axes[0], "y", currency_symbol)
    return figure


__all__ = ["DENSITY_LEVELS", "backtest_chart", "distribution_chart", "to_svg"]
