"""Evaluation figures: reliability diagram, lift by decile, feature importance.

Each function returns a :class:`matplotlib.figure.Figure` drawn on an Agg canvas that the
function creates itself: no pyplot, no global backend switch, no figure kept alive by a
figure manager — safe in servers, worker processes and tests. Registry code logs the
figures to MLflow (``mlflow.log_figure(fig, "calibration.png")``); notebooks display them.
matplotlib is imported only when a function is called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from models.metrics import N_BINS, expected_calibration_error, lift_curve, reliability_curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_MODEL_COLOUR = "#1f5fa8"
_BASELINE_COLOURS = ("#d95f02", "#7570b3", "#1b9e77", "#e7298a", "#66a61e", "#a6761d")


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _series(
    p: npt.ArrayLike, label: str, baselines: Mapping[str, npt.ArrayLike] | None
) -> list[tuple[str, npt.ArrayLike, str]]:
    out = [(label, p, _MODEL_COLOUR)]
    for i, (name, values) in enumerate((baselines or {}).items()):
        out.append((name, values, _BASELINE_COLOURS[i % len(_BASELINE_COLOURS)]))
    return out


def reliability_diagram(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    *,
    baselines: Mapping[str, npt.ArrayLike] | None = None,
    label: str = "model",
    n_bins: int = N_BINS,
    strategy: Literal["quantile", "uniform"] = "quantile",
    title: str = "Reliability (calibration)",
    observed: str = "Observed conversion rate",
) -> Figure:
    """Observed rate (``observed`` names it on the axis) against mean predicted probability
    per bin, for the model (with 95% Wilson intervals) and any baselines scored on the same
    rows, beside the diagonal of perfect calibration; the legend gives each one's ECE. Below, the
    distribution of the predictions. ``y``: 0/1 labels; ``p`` and each baseline:
    probabilities aligned with ``y``."""
    figure = _figure(6.4, 6.4)
    top, bottom = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    for name, values, colour in _series(p, label, baselines):
        curve = reliability_curve(y, values, n_bins=n_bins, strategy=strategy)
        ece = expected_calibration_error(y, values, n_bins=n_bins)
        text = f"{name} (ECE {ece:.3f})"
        if name == label:
            yerr = np.vstack(
                [curve.observed_rate - curve.ci_low, curve.ci_high - curve.observed_rate]
            )
            top.errorbar(
                curve.mean_predicted,
                curve.observed_rate,
                yerr=yerr,
                marker="o",
                color=colour,
                capsize=3,
                label=text,
            )
        else:
            top.plot(
                curve.mean_predicted, curve.observed_rate, marker="s", color=colour, label=text
            )
        bottom.hist(
            np.asarray(values, dtype=np.float64),
            bins=40,
            range=(0.0, 1.0),
            histtype="step",
            color=colour,
            linewidth=1.5,
        )
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.0)
    top.set_ylabel(observed)
    top.set_title(title)
    handles, labels = top.get_legend_handles_labels()
    # errorbar entries sort last by default: list the model, the baselines, then the diagonal
    rank = {True: 0, False: 1}
    order = sorted(
        range(len(labels)),
        key=lambda i: 2 if labels[i] == "perfect" else rank[labels[i].startswith(f"{label} (")],
    )
    top.legend(
        [handles[i] for i in order], [labels[i] for i in order], loc="upper left", fontsize="small"
    )
    top.grid(alpha=0.3)
    bottom.set_xlabel(f"Mean predicted probability ({strategy} bins)")
    bottom.set_ylabel("Rows")
    bottom.grid(alpha=0.3)
    return figure


def lift_chart(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    *,
    baselines: Mapping[str, npt.ArrayLike] | None = None,
    label: str = "model",
    title: str = "Lift by decile",
) -> Figure:
    """Lift (conversion rate in the decile / overall rate) per score decile, 1 = the 10%
    highest scores, as grouped bars for the model and any baselines; the dashed line at 1
    is a random ranking."""
    figure = _figure(7.2, 4.4)
    axes = figure.subplots()
    series = _series(p, label, baselines)
    width = 0.8 / len(series)
    for i, (name, values, colour) in enumerate(series):
        curve = lift_curve(y, values)
        offset = (i - (len(series) - 1) / 2) * width
        top = curve.lift[0]
        axes.bar(
            curve.decile + offset,
            np.nan_to_num(curve.lift),
            width=width,
            color=colour,
            label=f"{name} (top decile {top:.2f}×)",
        )
    axes.axhline(1.0, linestyle="--", color="grey", linewidth=1)
    axes.set_xticks(np.arange(1, 11))
    axes.set_xlabel("Score decile (1 = highest scores)")
    axes.set_ylabel("Lift")
    axes.set_title(title)
    axes.legend(fontsize="small")
    axes.grid(axis="y", alpha=0.3)
    return figure


def feature_importance_chart(
    names: Sequence[str],
    gains: npt.ArrayLike,
    *,
    top_n: int = 20,
    normalise: bool = True,
    title: str = "Feature importance (gain)",
) -> Figure:
    """Horizontal bars of the ``top_n`` largest gains (LightGBM
    ``feature_importance("gain")``), largest on top; ``normalise`` shows each as a share
    of the total gain."""
    values = np.asarray(gains, dtype=np.float64)
    if values.ndim != 1 or values.size != len(names):
        raise ValueError(
            f"names and gains must be equally long; got {len(names)} names and {values.size} gains"
        )
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1; got {top_n}")
    total = float(values.sum())
    shown = values / total if normalise and total > 0 else values
    order = np.argsort(-values, kind="mergesort")[:top_n][::-1]
    figure = _figure(6.4, max(2.0, 0.3 * order.size + 1.2))
    axes = figure.subplots()
    axes.barh([names[i] for i in order], shown[order], color=_MODEL_COLOUR)
    axes.set_xlabel("Share of total gain" if normalise and total > 0 else "Gain")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    return figure


def backtest_fan_chart(
    periods: Sequence[Mapping[str, object]],
    *,
    currency: str = "",
    title: str = "Backtest",
    annotate: bool = True,
    size: tuple[float, float] = (9.0, 4.6),
) -> Figure:
    """Forecast bands against actual bookings over time, one point per backtest period:
    the model's 80% (P10–P90) and 50% (P25–P75) bands and P50, the stage-weighted
    baseline's P50, and the actual bookings (filled when inside the 80% band, hollow when
    outside). ``periods``: the ``periods`` records of :class:`models.backtest.BacktestResult`.
    ``annotate=False`` leaves out the title, legend and axis label (words), for a page that
    writes them itself in the reader's language."""
    import matplotlib.dates as mdates

    figure = _figure(*size)
    ax = figure.add_subplot()
    when = np.array([np.datetime64(str(p["period_start"]), "D") for p in periods])

    def series(block: str, key: str) -> np.ndarray:
        return np.array([float(p[block][key]) for p in periods], dtype=np.float64)  # type: ignore[index]

    ax.fill_between(when, series("model", "p10"), series("model", "p90"), color=_MODEL_COLOUR,
                    alpha=0.18, step="mid", label="model 80% band")  # fmt: skip
    ax.fill_between(when, series("model", "p25"), series("model", "p75"), color=_MODEL_COLOUR,
                    alpha=0.30, step="mid", label="model 50% band")  # fmt: skip
    ax.plot(when, series("model", "p50"), color=_MODEL_COLOUR, lw=1.5, label="model P50")
    ax.plot(when, series("baseline", "p50"), color=_BASELINE_COLOURS[0], lw=1.2, ls="--",
            label="stage-weighted P50")  # fmt: skip
    actual = np.array([float(p["actual"]) for p in periods])  # type: ignore[arg-type]
    inside = np.array([bool(p["model"]["in_80"]) for p in periods])  # type: ignore[index]
    ax.scatter(when[inside], actual[inside], color="black", s=22, zorder=3, label="actual (in 80%)")
    ax.scatter(when[~inside], actual[~inside], facecolor="white", edgecolor="black", s=26,
               zorder=3, label="actual (outside)")  # fmt: skip
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.grid(alpha=0.3)
    if annotate:
        coverage = float(inside.mean()) if len(inside) else float("nan")
        ax.set_title(
            f"{title}: actual inside the 80% band in {coverage:.0%} of {len(inside)} periods"
        )
        ax.set_ylabel(f"bookings {currency}".strip())
        ax.legend(fontsize=8, ncols=3, loc="upper left")
    return figure
