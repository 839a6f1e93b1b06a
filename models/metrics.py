"""Metrics for probability scores of a binary outcome: ranking, calibration and lift.

Every function takes ``y`` (labels, 0/1 or bool) and ``p`` (predicted probabilities of
``y == 1``, in [0, 1]) as 1-D arrays of equal length, and is pure: no state, no I/O.
Below, n is the number of rows, n₊ / n₋ the numbers of positives / negatives and
π = n₊ / n the base rate.

Invalid input (labels other than 0/1, probabilities that are NaN or outside [0, 1],
lengths that differ) raises ``ValueError``. *Degenerate* input — no rows, or a metric that
needs both classes on a one-class sample — is not an error: the scalar functions return
``nan`` and emit an :class:`UndefinedMetricWarning` saying why, and the reports put
``None`` in the value and the reason under ``"undefined"``.

Ties: ROC AUC counts a tied positive/negative pair as half ordered; average precision
treats tied scores as one threshold (as scikit-learn does); lift and decile rates give
tied scores that straddle a decile boundary their *expected* share of positives (as if
the tie were broken at random), so rule scores with few distinct values are not flattered
or penalised by the row order.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Probabilities are clipped to [LOG_LOSS_EPS, 1 − LOG_LOSS_EPS] inside the log loss.
LOG_LOSS_EPS: Final = 1e-15
#: Default number of bins for ECE and the reliability curve.
N_BINS: Final = 10
#: z of a two-sided 95% interval.
Z_95: Final = 1.959963984540054

MISSING_SEGMENT: Final = "<missing>"


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on this input (no rows, or one class only); the value is nan."""


# --- input checks -----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value (for readable error messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _check(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Labels and probabilities as float64 1-D arrays, or a ``ValueError`` saying what and
    where."""
    y_arr = np.asarray(y)
    p_arr = np.asarray(p, dtype=np.float64)
    if y_arr.ndim != 1 or p_arr.ndim != 1:
        raise ValueError(f"y and p must be 1-D arrays; got shapes {y_arr.shape} and {p_arr.shape}")
    if y_arr.shape[0] != p_arr.shape[0]:
        raise ValueError(
            f"y and p must have the same length; got {y_arr.shape[0]} labels and "
            f"{p_arr.shape[0]} probabilities"
        )
    try:
        y_float = y_arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"labels must be 0/1 or booleans; got dtype {y_arr.dtype}") from exc
    bad_y = (y_float != 0.0) & (y_float != 1.0)
    if bad_y.any():
        i = int(np.argmax(bad_y))
        raise ValueError(
            f"labels must be 0/1 or booleans; position {i} holds {_plain(y_arr[i])!r} "
            f"({int(bad_y.sum())} bad label(s))"
        )
    bad_p = ~np.isfinite(p_arr) | (p_arr < 0.0) | (p_arr > 1.0)
    if bad_p.any():
        i = int(np.argmax(bad_p))
        raise ValueError(
            f"probabilities must be finite and in [0, 1]; position {i} holds {float(p_arr[i])!r} "
            f"({int(bad_p.sum())} bad value(s))"
        )
    return y_float, p_arr


def _both_classes_reason(y: FloatArray) -> str | None:
    if y.size == 0:
        return "no rows"
    positives = int(y.sum())
    if positives == 0:
        return f"only negatives ({y.size} rows, no positive)"
    if positives == y.size:
        return f"only positives ({y.size} rows, no negative)"
    return None


def _warned(value: float, reason: str | None, metric: str) -> float:
    if reason is not None:
        warnings.warn(f"{metric} is undefined: {reason}", UndefinedMetricWarning, stacklevel=3)
        return math.nan
    return value


# --- ranking ----------------------------------------------------------------------------


def _average_ranks(p: FloatArray) -> FloatArray:
    """1-based ranks of ``p``, ties sharing the average of their ranks."""
    order = np.argsort(p, kind="mergesort")
    _, first, counts = np.unique(p[order], return_index=True, return_counts=True)
    ranks_sorted = np.repeat(first + (counts + 1) / 2.0, counts)
    ranks = np.empty(p.size, dtype=np.float64)
    ranks[order] = ranks_sorted
    return ranks


def _roc_auc(y: FloatArray, p: FloatArray) -> tuple[float, str | None]:
    reason = _both_classes_reason(y)
    if reason is not None:
        return math.nan, reason
    n_pos = float(y.sum())
    n_neg = float(y.size) - n_pos
    rank_sum = float(_average_ranks(p)[y == 1.0].sum())
    return (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg), None


def roc_auc(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a
    random negative, ties counting one half (Mann–Whitney U)::

        AUC = (Σ_{i: y_i = 1} rank(p_i) − n₊(n₊ + 1)/2) / (n₊ · n₋)

    with average ranks for ties. Undefined (nan) without both classes.
    """
    value, reason = _roc_auc(*_check(y, p))
    return _warned(value, reason, "ROC AUC")


def _average_precision(y: FloatArray, p: FloatArray) -> tuple[float, str | None]:
    if y.size == 0:
        return math.nan, "no rows"
    if y.sum() == 0:
        return math.nan, f"no positive among {y.size} rows (precision–recall needs positives)"
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(p_sorted)), y.size - 1]
    tp = np.cumsum(y_sorted)[last_of_tie]
    predicted_positive = last_of_tie + 1.0
    precision = tp / predicted_positive
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision)), None


def average_precision(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """PR AUC as average precision: with thresholds at the distinct scores taken from the
    highest down, and P_k / R_k the precision / recall at threshold k::

        AP = Σ_k (R_k − R_{k−1}) · P_k,   R_0 = 0

    (the step-wise integral used by scikit-learn; no interpolation). Its no-skill value is
    the base rate π. Undefined (nan) without positives.
    """
    value, reason = _average_precision(*_check(y, p))
    return _warned(value, reason, "average precision")


# --- probability quality ----------------------------------------------------------------


def _log_loss(y: FloatArray, p: FloatArray, eps: float) -> tuple[float, str | None]:
    if y.size == 0:
        return math.nan, "no rows"
    q = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(q) + (1.0 - y) * np.log1p(-q))), None


def log_loss(y: npt.ArrayLike, p: npt.ArrayLike, eps: float = LOG_LOSS_EPS) -> float:
    """Mean negative log-likelihood, in nats per row, with p clipped to [eps, 1 − eps] so
    one confident mistake costs at most −log(eps) (≈ 34.5 for the default 1e-15)::

        LL = −(1/n) Σ_i [ y_i log p_i + (1 − y_i) log(1 − p_i) ]

    Defined on one-class samples; undefined (nan) on no rows.
    """
    value, reason = _log_loss(*_check(y, p), eps)
    return _warned(value, reason, "log loss")


def _brier(y: FloatArray, p: FloatArray) -> tuple[float, str | None]:
    if y.size == 0:
        return math.nan, "no rows"
    return float(np.mean((p - y) ** 2)), None


def brier_score(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Brier score, the mean squared error of the probabilities: (1/n) Σ_i (p_i − y_i)².
    0 is perfect; always predicting π scores π(1 − π). Undefined (nan) on no rows."""
    value, reason = _brier(*_check(y, p))
    return _warned(value, reason, "Brier score")


# --- calibration ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per bin of predictions: the mean prediction, the observed positive rate, the row
    count and a 95% Wilson interval of the observed rate. Empty bins are left out.
    Observed rates may rest on fractional positive counts where tied rows straddle a
    bin edge (see :func:`reliability_curve`).

    ``p_min`` / ``p_max`` are the smallest / largest prediction in the bin.
    """

    mean_predicted: FloatArray
    observed_rate: FloatArray
    count: IntArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_min: FloatArray
    p_max: FloatArray

    def to_records(self) -> list[dict[str, float | int]]:
        """One JSON-able dict per bin."""
        return [
            {
                "mean_predicted": float(self.mean_predicted[i]),
                "observed_rate": float(self.observed_rate[i]),
                "count": int(self.count[i]),
                "ci_low": float(self.ci_low[i]),
                "ci_high": float(self.ci_high[i]),
                "p_min": float(self.p_min[i]),
                "p_max": float(self.p_max[i]),
            }
            for i in range(self.count.size)
        ]


def wilson_interval(
    successes: npt.ArrayLike, trials: npt.ArrayLike, z: float = Z_95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval of a binomial proportion (vectorised)::

        centre = (p̂ + z²/2m) / (1 + z²/m)
        half   = z / (1 + z²/m) · sqrt(p̂(1 − p̂)/m + z²/4m²)

    with p̂ = successes / m and m trials. Unlike the normal interval it stays inside [0, 1]
    and is not degenerate at p̂ = 0 or 1. Zero trials give (0, 1).
    """
    k = np.asarray(successes, dtype=np.float64)
    m = np.asarray(trials, dtype=np.float64)
    safe_m = np.where(m > 0, m, 1.0)
    phat = k / safe_m
    denom = 1.0 + z**2 / safe_m
    centre = (phat + z**2 / (2.0 * safe_m)) / denom
    half = z / denom * np.sqrt(phat * (1.0 - phat) / safe_m + z**2 / (4.0 * safe_m**2))
    low = np.where(m > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
    high = np.where(m > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    return low, high


def _tie_averaged_cumsum(
    p_sorted: FloatArray, v_sorted: FloatArray, positions: IntArray
) -> FloatArray:
    """Σ v over the first ``k`` rows of a sorted order, for each k in ``positions``, with
    rows of equal p sharing their total pro rata (the expectation over random tie-breaks).

    Between tie-group boundaries the cumulative sum is interpolated linearly, which is
    exactly the pro-rata share of the group that straddles position k.
    """
    if p_sorted.size == 0:
        return np.zeros(np.shape(positions), dtype=np.float64)
    group_ends = np.r_[np.flatnonzero(np.diff(p_sorted)) + 1, p_sorted.size]
    cumulative = np.cumsum(v_sorted)
    return np.interp(positions, np.r_[0, group_ends], np.r_[0.0, cumulative[group_ends - 1]])


def _reliability(
    y: FloatArray, p: FloatArray, n_bins: int, strategy: Literal["quantile", "uniform"]
) -> ReliabilityCurve:
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1; got {n_bins}")
    if strategy == "quantile":
        order = np.argsort(p, kind="mergesort")
        p_sorted, y_sorted = p[order], y[order]
        edges = (np.arange(n_bins + 1, dtype=np.int64) * p.size) // n_bins
        count = np.diff(edges)
        sum_p = np.diff(_tie_averaged_cumsum(p_sorted, p_sorted, edges))
        sum_y = np.diff(_tie_averaged_cumsum(p_sorted, y_sorted, edges))
        keep = count > 0
        p_min = p_sorted[edges[:-1][keep]]
        p_max = p_sorted[edges[1:][keep] - 1]
        count, sum_p, sum_y = count[keep], sum_p[keep], sum_y[keep]
    elif strategy == "uniform":
        bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
        count = np.bincount(bins, minlength=n_bins).astype(np.int64)
        sum_p = np.bincount(bins, weights=p, minlength=n_bins).astype(np.float64)
        sum_y = np.bincount(bins, weights=y, minlength=n_bins).astype(np.float64)
        lowest = np.full(n_bins, np.inf)
        highest = np.full(n_bins, -np.inf)
        np.minimum.at(lowest, bins, p)
        np.maximum.at(highest, bins, p)
        keep = count > 0
        p_min, p_max = lowest[keep], highest[keep]
        count, sum_p, sum_y = count[keep], sum_p[keep], sum_y[keep]
    else:
        raise ValueError(f"unknown binning strategy {strategy!r}; use 'quantile' or 'uniform'")
    low, high = wilson_interval(sum_y, count)
    return ReliabilityCurve(
        mean_predicted=sum_p / count,
        observed_rate=sum_y / count,
        count=count,
        ci_low=low,
        ci_high=high,
        p_min=p_min,
        p_max=p_max,
    )


def reliability_curve(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    n_bins: int = N_BINS,
    strategy: Literal["quantile", "uniform"] = "quantile",
) -> ReliabilityCurve:
    """The reliability (calibration) curve: per bin b, mean p, observed rate ȳ_b, count
    n_b and the 95% Wilson interval of ȳ_b. ``strategy="quantile"`` (default) makes bins
    of equal count (sizes differ by at most one), so every point rests on about
    n / n_bins rows; rows tied on p that straddle a bin edge are shared pro rata, so the
    curve does not depend on row order. ``"uniform"`` makes bins of equal width on [0, 1].
    Empty bins are left out; no rows give an empty curve."""
    y_arr, p_arr = _check(y, p)
    return _reliability(y_arr, p_arr, n_bins, strategy)


def _ece(y: FloatArray, p: FloatArray, n_bins: int) -> tuple[float, str | None]:
    if y.size == 0:
        return math.nan, "no rows"
    curve = _reliability(y, p, n_bins, "quantile")
    gap = np.abs(curve.mean_predicted - curve.observed_rate)
    return float(np.sum(curve.count * gap) / y.size), None


def expected_calibration_error(y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = N_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-count bins (rows sorted by p, cut
    into groups whose sizes differ by at most one; ties straddling an edge shared pro rata,
    as in :func:`reliability_curve`)::

        ECE = Σ_b (n_b / n) · | mean_{i∈b} p_i − mean_{i∈b} y_i |

    0 when every bin's mean prediction equals its observed rate. It has a positive floor
    from sampling noise (roughly sqrt(p(1−p)/n_b) per bin), so compare ECEs on the same
    rows. Undefined (nan) on no rows."""
    value, reason = _ece(*_check(y, p), n_bins)
    return _warned(value, reason, "expected calibration error")


# --- lift -------------------------------------------------------------------------------


def _expected_top_positives(y: FloatArray, p: FloatArray, k: IntArray) -> FloatArray:
    """Expected positives among the ``k`` highest-scored rows, for each k, with ties at
    the cut sharing their positives pro rata (as if broken at random)."""
    order = np.argsort(-p, kind="mergesort")
    return _tie_averaged_cumsum(-p[order], y[order], k)


@dataclass(frozen=True)
class LiftCurve:
    """Rows ranked by p (highest first) and cut into deciles (decile 1 = top 10%).

    ``positives`` is the expected positive count (ties at a boundary split pro rata);
    ``rate`` = positives / count; ``lift`` = rate / π; the ``cumulative_*`` columns are
    for deciles 1…d together; ``cumulative_gain`` is the share of all positives captured.
    """

    decile: IntArray
    count: IntArray
    positives: FloatArray
    rate: FloatArray
    lift: FloatArray
    cumulative_rate: FloatArray
    cumulative_lift: FloatArray
    cumulative_gain: FloatArray

    def to_records(self) -> list[dict[str, float | int]]:
        """One JSON-able dict per decile (NaN where a decile is empty or π = 0)."""
        return [
            {
                "decile": int(self.decile[i]),
                "count": int(self.count[i]),
                "positives": float(self.positives[i]),
                "rate": float(self.rate[i]),
                "lift": float(self.lift[i]),
                "cumulative_rate": float(self.cumulative_rate[i]),
                "cumulative_lift": float(self.cumulative_lift[i]),
                "cumulative_gain": float(self.cumulative_gain[i]),
            }
            for i in range(self.decile.size)
        ]


def _lift_curve(y: FloatArray, p: FloatArray, n_groups: int = 10) -> LiftCurve:
    n = y.size
    # Group sizes differ by at most one, larger groups first (as numpy.array_split).
    sizes = np.full(n_groups, n // n_groups, dtype=np.int64)
    sizes[: n % n_groups] += 1
    cut = np.cumsum(sizes)
    cum_pos = _expected_top_positives(y, p, cut)
    positives = np.diff(np.r_[0.0, cum_pos])
    base = float(y.mean()) if n else math.nan
    total = float(y.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = positives / sizes
        cumulative_rate = cum_pos / cut
        lift = rate / base if base > 0 else np.full(n_groups, math.nan)
        cumulative_lift = cumulative_rate / base if base > 0 else np.full(n_groups, math.nan)
        gain = cum_pos / total if total > 0 else np.full(n_groups, math.nan)
    return LiftCurve(
        decile=np.arange(1, n_groups + 1, dtype=np.int64),
        count=sizes,
        positives=positives,
        rate=np.where(sizes > 0, rate, math.nan),
        lift=np.where(sizes > 0, lift, math.nan),
        cumulative_rate=np.where(cut > 0, cumulative_rate, math.nan),
        cumulative_lift=np.where(cut > 0, cumulative_lift, math.nan),
        cumulative_gain=gain,
    )


def lift_curve(y: npt.ArrayLike, p: npt.ArrayLike) -> LiftCurve:
    """Conversion rate and lift by decile of the score (decile 1 = the 10% highest).

    With n_d rows and P_d expected positives in decile d: rate_d = P_d / n_d and
    lift_d = rate_d / π. A random ranking has lift ≈ 1 everywhere; a perfect one puts all
    positives first. Deciles differ in size by at most one row (the first ones larger).
    """
    return _lift_curve(*_check(y, p))


def _top_decile(y: FloatArray, p: FloatArray) -> tuple[float, float, str | None, str | None]:
    """(rate, lift, reason rate undefined, reason lift undefined) in the top decile."""
    if y.size == 0:
        return math.nan, math.nan, "no rows", "no rows"
    k = math.ceil(y.size / 10)
    rate = float(_expected_top_positives(y, p, np.array([k]))[0]) / k
    if y.sum() == 0:
        return rate, math.nan, None, f"no positive among {y.size} rows (base rate is 0)"
    return rate, rate / float(y.mean()), None, None


def top_decile_rate(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Conversion rate among the ⌈n/10⌉ highest-scored rows: P_top / ⌈n/10⌉ (ties at the
    cut share their positives pro rata). Undefined (nan) on no rows."""
    rate, _, reason, _ = _top_decile(*_check(y, p))
    return _warned(rate, reason, "top-decile conversion rate")


def top_decile_lift(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Lift in the top decile: top-decile conversion rate / π. 1 is no better than random;
    the most it can reach is min(1, n₊/⌈n/10⌉) / π. Undefined (nan) when π = 0."""
    _, lift, _, reason = _top_decile(*_check(y, p))
    return _warned(lift, reason, "top-decile lift")


# --- reports ----------------------------------------------------------------------------


def _opt(value: float) -> float | None:
    return None if math.isnan(value) else value


def _core(y: FloatArray, p: FloatArray, n_bins: int) -> dict[str, Any]:
    undefined: dict[str, str] = {}
    out: dict[str, Any] = {
        "n": int(y.size),
        "positives": int(y.sum()),
        "base_rate": _opt(float(y.mean())) if y.size else None,
        "mean_predicted": _opt(float(p.mean())) if y.size else None,
    }
    if y.size == 0:
        undefined["base_rate"] = undefined["mean_predicted"] = "no rows"
    for name, (value, reason) in {
        "roc_auc": _roc_auc(y, p),
        "log_loss": _log_loss(y, p, LOG_LOSS_EPS),
        "ece": _ece(y, p, n_bins),
    }.items():
        out[name] = _opt(value)
        if reason is not None:
            undefined[name] = reason
    out["undefined"] = undefined
    return out


def classification_report(
    y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = N_BINS
) -> dict[str, Any]:
    """All the scalar metrics of this module in one JSON-able dict.

    Keys: ``n``, ``positives``, ``base_rate``, ``mean_predicted``, ``roc_auc``,
    ``pr_auc`` (average precision), ``log_loss``, ``brier``, ``ece``, ``top_decile_rate``,
    ``top_decile_lift`` — floats, or ``None`` when undefined — and ``undefined``, a dict
    from metric name to the reason it is undefined (empty when all are defined).
    """
    y_arr, p_arr = _check(y, p)
    out = _core(y_arr, p_arr, n_bins)
    undefined: dict[str, str] = out.pop("undefined")
    ap, ap_reason = _average_precision(y_arr, p_arr)
    brier, brier_reason = _brier(y_arr, p_arr)
    rate, lift, rate_reason, lift_reason = _top_decile(y_arr, p_arr)
    for name, value, reason in (
        ("pr_auc", ap, ap_reason),
        ("brier", brier, brier_reason),
        ("top_decile_rate", rate, rate_reason),
        ("top_decile_lift", lift, lift_reason),
    ):
        out[name] = _opt(value)
        if reason is not None:
            undefined[name] = reason
    out["undefined"] = undefined
    return out


def _segment_key(value: Any) -> str:
    if value is None:
        return MISSING_SEGMENT
    missing = pd.isna(value)
    if isinstance(missing, bool | np.bool_) and missing:
        return MISSING_SEGMENT
    return str(value)


def segment_report(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    segments: Mapping[str, npt.ArrayLike],
    n_bins: int = N_BINS,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Metrics per value of each segment column (e.g. ``{"source": ..., "region": ...}``).

    Returns ``{column: {value: stats}}`` where ``value`` is the segment value as a string
    (``"<missing>"`` for None/NaN) and ``stats`` holds ``n``, ``positives``, ``base_rate``,
    ``mean_predicted``, ``roc_auc`` (``None`` unless both classes are present),
    ``log_loss``, ``ece`` and ``undefined`` (metric → reason). Values are listed by
    decreasing ``n``. Each segment array must be as long as ``y``.
    """
    y_arr, p_arr = _check(y, p)
    report: dict[str, dict[str, dict[str, Any]]] = {}
    for column, raw in segments.items():
        values = np.asarray(raw, dtype=object)
        if values.ndim != 1 or values.shape[0] != y_arr.shape[0]:
            raise ValueError(
                f"segment {column!r} has shape {values.shape}; it must be 1-D with one value "
                f"per row ({y_arr.shape[0]})"
            )
        keys = np.array([_segment_key(v) for v in values], dtype=object)
        uniques, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        per_value: dict[str, dict[str, Any]] = {}
        for j in np.argsort(-counts, kind="mergesort"):
            rows = inverse == j
            per_value[str(uniques[j])] = _core(y_arr[rows], p_arr[rows], n_bins)
        report[column] = per_value
    return report
