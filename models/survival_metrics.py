"""Metrics for deal close-time outlooks: won and lost compete, open deals are censored.

Every function takes, per deal (one row per test snapshot), ``time`` — days from the
snapshot to the close or to the end of observation, finite and ≥ 0 — and ``event`` — the
code from :mod:`models.competing_risks`: ``CENSORED`` (0, still open when observation
ended), ``WON`` (1) or ``LOST`` (2). Predictions are per-row arrays of the same length:
``p_won_by_t`` is P(won within ``t_days``), i.e. the won cumulative incidence at t, in
[0, 1]; ``score`` is any finite ranking score, higher meaning "won sooner / more surely".

* :func:`concordance_index_won` — Wolbers et al. (2009) concordance for the won cause;
* :func:`censoring_survival` — Kaplan–Meier estimate of the censoring distribution G;
* :func:`brier_score_won` — the IPCW (Graf) Brier score of the won incidence at t;
* :func:`calibration_at` — calibration at t on the deals whose status at t is known;
* :func:`median_close_mae` — error of the predicted median close day of won deals;
* :func:`survival_report` — all of the above in one JSON-able dict.

Invalid input (lengths that differ, unknown event codes, negative or non-finite times,
probabilities outside [0, 1]) raises ``ValueError`` naming the argument. Degenerate input
(no comparable pairs, no rows) is not an error: the value is ``nan`` and an
:class:`~models.metrics.UndefinedMetricWarning` says why, as in :mod:`models.metrics`.

All metrics here are computed on outcomes observed *after* the snapshot; they are for
evaluation on held-out snapshots only, never features.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.competing_risks import CENSORED, LOST, WON
from models.metrics import UndefinedMetricWarning, expected_calibration_error

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_EVENT_CODES = (CENSORED, WON, LOST)


# --- input checks -----------------------------------------------------------------------


def _first_bad(bad: npt.NDArray[np.bool_]) -> tuple[int, int]:
    return int(np.argmax(bad)), int(bad.sum())


def _check_outcomes(time: npt.ArrayLike, event: npt.ArrayLike) -> tuple[FloatArray, IntArray]:
    """``time`` as float64 and ``event`` as int64 1-D arrays, or a ``ValueError`` saying
    which argument is wrong and what to pass."""
    t_raw = np.asarray(time)
    e_raw = np.asarray(event)
    if t_raw.ndim != 1 or e_raw.ndim != 1:
        raise ValueError(
            f"time and event must be 1-D arrays (one value per deal); got shapes "
            f"{t_raw.shape} and {e_raw.shape}"
        )
    if t_raw.shape[0] != e_raw.shape[0]:
        raise ValueError(
            f"time and event must have the same length; got {t_raw.shape[0]} times and "
            f"{e_raw.shape[0]} event codes"
        )
    if t_raw.dtype.kind not in "iuf":
        raise ValueError(f"time must hold numbers of days; got dtype {t_raw.dtype}")
    t = t_raw.astype(np.float64)
    bad_t = ~np.isfinite(t) | (t < 0.0)
    if bad_t.any():
        i, k = _first_bad(bad_t)
        raise ValueError(
            f"time must be finite days ≥ 0 from the snapshot; position {i} holds "
            f"{float(t[i])!r} ({k} bad value(s))"
        )
    if e_raw.dtype.kind == "b":
        raise ValueError(
            "event must hold the event codes 0 (open/censored), 1 (won), 2 (lost), not a "
            "boolean event indicator"
        )
    if e_raw.dtype.kind not in "iuf":
        raise ValueError(f"event must hold the codes 0, 1, 2; got dtype {e_raw.dtype}")
    e_float = e_raw.astype(np.float64)
    bad_e = ~np.isin(e_float, _EVENT_CODES)
    if bad_e.any():
        i, k = _first_bad(bad_e)
        raise ValueError(
            f"event must hold the codes 0 (open/censored), 1 (won), 2 (lost); position {i} "
            f"holds {e_raw[i].item()!r} ({k} bad code(s))"
        )
    return t, e_float.astype(np.int64)


def _check_values(
    name: str, values: npt.ArrayLike, n: int, *, probability: bool = False
) -> FloatArray:
    """A per-row array of length ``n``: finite (and in [0, 1] when ``probability``)."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"{name} must be a 1-D array with one value per deal ({n}); got shape {arr.shape}"
        )
    if arr.dtype.kind not in "iufb":
        raise ValueError(f"{name} must hold numbers; got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    bad = ~np.isfinite(out)
    if probability:
        bad |= (out < 0.0) | (out > 1.0)
    if bad.any():
        i, k = _first_bad(bad)
        what = "probabilities in [0, 1]" if probability else "finite numbers"
        raise ValueError(
            f"{name} must hold {what}; position {i} holds {float(out[i])!r} ({k} bad value(s))"
        )
    return out


def _check_days(name: str, value: float) -> float:
    days = float(value)
    if not math.isfinite(days) or days < 0.0:
        raise ValueError(f"{name} must be a finite number of days ≥ 0; got {value!r}")
    return days


def _undefined(metric: str, reason: str) -> float:
    warnings.warn(f"{metric} is undefined: {reason}", UndefinedMetricWarning, stacklevel=3)
    return math.nan


# --- concordance ------------------------------------------------------------------------


def _prefix_rank_counts(ranks: IntArray, k: IntArray, x: IntArray) -> tuple[FloatArray, FloatArray]:
    """For each query q: how many of ``ranks[:k[q]]`` are below ``x[q]``, and how many equal.

    Offline dominance counting in O((m + q) log² m), vectorised over the ⌈log₂ m⌉ levels of
    a merge-sort tree: the prefix ``[0, k)`` is the union of the dyadic blocks of size 2^L
    for the bits L set in k; each level's blocks are sorted once (keyed by block, then
    rank) and every query answered by ``searchsorted``.
    """
    less = np.zeros(k.size, dtype=np.float64)
    equal = np.zeros(k.size, dtype=np.float64)
    m = ranks.size
    if m == 0 or k.size == 0:
        return less, equal
    # keys of different blocks must not interleave, whatever the query ranks
    width = np.int64(max(int(ranks.max()), int(x.max())) + 2)
    positions = np.arange(m, dtype=np.int64)
    for level in range(m.bit_length()):
        has = ((k >> level) & 1) == 1
        if not has.any():
            continue
        keys = np.sort((positions >> level) * width + ranks)
        base = ((k[has] >> level) - 1) * width
        start = np.searchsorted(keys, base, side="left")
        lo = np.searchsorted(keys, base + x[has], side="left")
        hi = np.searchsorted(keys, base + x[has], side="right")
        less[has] += lo - start
        equal[has] += hi - lo
    return less, equal


def _concordance_counts(
    t: FloatArray, e: IntArray, s: FloatArray, tau: float | None
) -> tuple[float, float]:
    """(concordant pairs with score ties counting ½, comparable pairs)."""
    _, ranks = np.unique(s, return_inverse=True)
    ranks = ranks.astype(np.int64)
    case = e == WON
    if tau is not None:
        case &= t <= tau
    t_case, r_case = t[case], ranks[case]
    if t_case.size == 0:
        return 0.0, 0.0
    # controls still open or closed after the win: a prefix of the rows by time, latest first
    by_time_desc = np.argsort(-t, kind="stable")
    n_later = t.size - np.searchsorted(np.sort(t), t_case, side="right")
    less_a, equal_a = _prefix_rank_counts(ranks[by_time_desc], n_later.astype(np.int64), r_case)
    # controls lost at or before the win: a prefix of the lost rows by time, earliest first
    lost = np.flatnonzero(e == LOST)
    lost = lost[np.argsort(t[lost], kind="stable")]
    n_lost_before = np.searchsorted(t[lost], t_case, side="right")
    less_b, equal_b = _prefix_rank_counts(ranks[lost], n_lost_before.astype(np.int64), r_case)
    concordant = float(less_a.sum() + less_b.sum()) + 0.5 * float(equal_a.sum() + equal_b.sum())
    comparable = float(n_later.sum() + n_lost_before.sum())
    return concordant, comparable


def concordance_index_won(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    score: npt.ArrayLike,
    tau_days: float | None = None,
) -> float:
    """Competing-risks concordance for the won cause (Wolbers et al., 2009), in [0, 1].

    Inputs: ``time`` (days, ≥ 0), ``event`` (0/1/2 codes), ``score`` (finite, higher = more
    likely won / won sooner, e.g. the won incidence at the horizon), all of length n;
    ``tau_days`` optionally restricts the *cases* to wins at ``time ≤ tau_days`` (later
    wins count as not yet won).

    A pair (i, j) is comparable when deal i was won at ``T_i`` (≤ tau) and deal j either
    left observation strictly later (``T_j > T_i``, any status) or was lost no later
    (``event_j == LOST`` and ``T_j ≤ T_i``). It is concordant when ``score_i > score_j``;
    a score tie counts ½. Two wins on the same day, and a win and a censoring on the same
    day, are not comparable. The control side uses the observed times, so a win exactly at
    tau is still compared with deals that were open beyond tau (as in ``pec::cindex``).

    Returns (concordant + ½ ties) / comparable, or ``nan`` with an
    :class:`UndefinedMetricWarning` when no pair is comparable. O(n log² n); about a
    second for 200k deals.

    Unlike Harrell's C (e.g. ``lifelines.utils.concordance_index``), a lost deal ranks
    *behind* every win, however early it was lost, and a deal censored on the same day as
    a win is left out rather than assumed to outlast it.
    """
    t, e = _check_outcomes(time, event)
    s = _check_values("score", score, t.size)
    tau = None if tau_days is None else _check_days("tau_days", tau_days)
    concordant, comparable = _concordance_counts(t, e, s, tau)
    if comparable == 0:
        where = "" if tau is None else f" by tau = {tau:g} days"
        return _undefined(
            "won concordance index",
            f"no comparable pairs ({int((e == WON).sum())} won of {t.size} deals{where}; a "
            "pair needs a win and a deal lost earlier or still open / closed later)",
        )
    return concordant / comparable


# --- censoring distribution -------------------------------------------------------------


@dataclass(frozen=True)
class CensoringSurvival:
    """A Kaplan–Meier step function G(t) = P(C > t) of the censoring time C.

    ``times`` are the distinct days on which some deal was censored (ascending) and
    ``survival`` is G just after each of them; G is 1 before the first. Call the object
    for G(t) (right-continuous) and :meth:`left` for the left limit G(t−) = P(C ≥ t).
    """

    times: FloatArray
    survival: FloatArray

    def __call__(self, t: npt.ArrayLike) -> FloatArray:
        """G(t) at days ``t`` (scalar or array), as a float64 array of t's shape."""
        idx = np.searchsorted(self.times, np.asarray(t, dtype=np.float64), side="right")
        return np.asarray(np.r_[1.0, self.survival][idx], dtype=np.float64)

    def left(self, t: npt.ArrayLike) -> FloatArray:
        """G(t−), the censoring survival just before days ``t``."""
        idx = np.searchsorted(self.times, np.asarray(t, dtype=np.float64), side="left")
        return np.asarray(np.r_[1.0, self.survival][idx], dtype=np.float64)


def _censoring_km(t: FloatArray, e: IntArray) -> CensoringSurvival:
    times, inverse = np.unique(t, return_inverse=True)
    n_exit = np.bincount(inverse, minlength=times.size).astype(np.float64)
    n_censored = np.bincount(inverse, weights=e == CENSORED, minlength=times.size)
    at_risk = t.size - np.r_[0.0, np.cumsum(n_exit)[:-1]]
    # closes on a day happen before that day's censorings, so they are not at risk of it
    at_risk_of_censoring = at_risk - (n_exit - n_censored)
    factor = 1.0 - n_censored / np.maximum(at_risk_of_censoring, 1.0)
    keep = n_censored > 0
    survival = np.asarray(np.cumprod(factor), dtype=np.float64)
    return CensoringSurvival(
        times=np.asarray(times[keep], dtype=np.float64), survival=survival[keep]
    )


def censoring_survival(time: npt.ArrayLike, event: npt.ArrayLike) -> CensoringSurvival:
    """Kaplan–Meier estimate of the censoring distribution G(t) = P(C > t), treating
    ``event == CENSORED`` as the "event" and wins and losses as censoring it.

    On a day with both closes and censorings, the closes come first (a deal censored on
    day t was still at risk of closing that day), so G's factor on day t is
    1 − c_t / (Y_t − d_t) with Y_t deals at risk, d_t closes and c_t censorings; without
    such ties this is the ordinary reverse Kaplan–Meier. Returns a
    :class:`CensoringSurvival` to evaluate at any days.
    """
    return _censoring_km(*_check_outcomes(time, event))


# --- Brier score and calibration at t ---------------------------------------------------


def _ipcw_terms(t: FloatArray, e: IntArray, horizon: float) -> tuple[FloatArray, FloatArray]:
    """Per-row IPCW weights and 0/1 targets of the Brier score at ``horizon``."""
    g = _censoring_km(t, e)
    closed = (e != CENSORED) & (t <= horizon)
    later = t > horizon
    # G(T_i−) > 0 for every observed close and G(t) > 0 when some deal outlasts t, so the
    # divisions below never see a zero where their weight is used
    g_at = np.where(closed, g.left(t), np.where(later, g(horizon), 1.0))
    weight = np.where(closed | later, 1.0 / np.where(g_at > 0, g_at, 1.0), 0.0)
    return weight, (closed & (e == WON)).astype(np.float64)


def _ipcw_brier(t: FloatArray, e: IntArray, p: FloatArray, horizon: float) -> float:
    weight, target = _ipcw_terms(t, e, horizon)
    return float(np.sum(weight * (p - target) ** 2) / t.size)


def brier_difference(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    p_a: npt.ArrayLike,
    p_b: npt.ArrayLike,
    t_days: float,
    groups: npt.ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Brier(a) − Brier(b) at ``t_days`` on the same rows, with a 95% bootstrap interval
    that resamples whole ``groups`` (deals: the snapshots of one deal are dependent).
    Negative means ``a`` is better; an interval below zero means reliably better.
    The censoring weights are those of the full sample (held fixed under resampling)."""
    t, e = _check_outcomes(time, event)
    a = _check_values("p_a", p_a, t.size, probability=True)
    b = _check_values("p_b", p_b, t.size, probability=True)
    horizon = _check_days("t_days", t_days)
    labels = np.asarray(groups).astype(str)
    if labels.shape != t.shape:
        raise ValueError(f"groups has {labels.size} values for {t.size} rows; pass one per row")
    codes, group = np.unique(labels, return_inverse=True)
    if t.size == 0:
        nan = _undefined("Brier difference", "no rows")
        return {"difference": nan, "ci_low": nan, "ci_high": nan}
    weight, target = _ipcw_terms(t, e, horizon)
    delta = weight * ((a - target) ** 2 - (b - target) ** 2)
    per_group = np.bincount(group, weights=delta, minlength=codes.size)
    rows = np.bincount(group, minlength=codes.size).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, codes.size, size=(n_boot, codes.size))
    boot = per_group[draws].sum(axis=1) / rows[draws].sum(axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    return {
        "difference": float(delta.sum() / t.size),
        "ci_low": float(low),
        "ci_high": float(high),
        "groups": int(codes.size),
    }


def brier_score_won(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    p_won_by_t: npt.ArrayLike,
    t_days: float,
) -> float:
    """Time-dependent Brier score of P(won by ``t_days``), inverse-probability-of-censoring
    weighted (Graf et al., 1999, in the competing-risks form)::

        BS(t) = (1/n) Σ_i w_i (p_i − 1{T_i ≤ t, won})²
        w_i = 1/G(T_i−) if closed (won or lost) at T_i ≤ t,
              1/G(t)    if T_i > t,
              0         if censored at T_i ≤ t

    with G the censoring Kaplan–Meier (:func:`censoring_survival`) on the same rows.
    Consistent for the uncensored Brier score under censoring independent of the
    outcome; equal to :func:`models.metrics.brier_score` when nothing is censored by t.
    Lower is better. ``nan`` (with a warning) on no rows.
    """
    t, e = _check_outcomes(time, event)
    p = _check_values("p_won_by_t", p_won_by_t, t.size, probability=True)
    horizon = _check_days("t_days", t_days)
    if t.size == 0:
        return _undefined("IPCW Brier score", "no rows")
    return _ipcw_brier(t, e, p, horizon)


def _calibration(
    t: FloatArray, e: IntArray, p: FloatArray, horizon: float, n_bins: int
) -> dict[str, Any]:
    known = (t > horizon) | (e != CENSORED)
    y = ((e == WON) & (t <= horizon))[known].astype(np.float64)
    p_known = p[known]
    n = int(known.sum())
    return {
        "n": n,
        "n_unknown": int(t.size - n),
        "ece": expected_calibration_error(y, p_known, n_bins),
        "mean_predicted": float(p_known.mean()) if n else math.nan,
        "observed_rate": float(y.mean()) if n else math.nan,
    }


def calibration_at(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    p_won_by_t: npt.ArrayLike,
    t_days: float,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Calibration of P(won by ``t_days``) on the deals whose status at t is known: still
    open after t (``time > t``) or closed, won or lost, by then. Label = won by t.

    Returns ``{"n": rows used, "n_unknown": rows censored at or before t (left out),
    "ece": expected calibration error (:func:`models.metrics.expected_calibration_error`,
    ``n_bins`` equal-count bins), "mean_predicted", "observed_rate"}`` — the last three
    ``nan`` when no row is known (the ECE then warns).

    Caveat: dropping the early-censored deals keeps early closes and loses would-be late
    ones, so with heavy censoring before t the observed rate leans towards deals that
    closed early (for win-by-t, usually upwards). :func:`brier_score_won` corrects for
    this by weighting; this does not. Compare ``n_unknown`` with ``n``.
    """
    t, e = _check_outcomes(time, event)
    p = _check_values("p_won_by_t", p_won_by_t, t.size, probability=True)
    horizon = _check_days("t_days", t_days)
    if n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    return _calibration(t, e, p, horizon, n_bins)


# --- close date -------------------------------------------------------------------------


def _median_mae(t: FloatArray, e: IntArray, median: FloatArray) -> tuple[float, int]:
    use = (e == WON) & np.isfinite(median)
    n = int(use.sum())
    if n == 0:
        return math.nan, 0
    return float(np.mean(np.abs(median[use] - t[use]))), n


def _check_median(median_won_days: npt.ArrayLike, n: int) -> FloatArray:
    arr = np.asarray(median_won_days)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"median_won_days must be a 1-D array with one value per deal ({n}); got shape "
            f"{arr.shape}"
        )
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"median_won_days must hold numbers of days; got dtype {arr.dtype}")
    median = arr.astype(np.float64)
    bad = np.isfinite(median) & (median < 0.0)
    if bad.any():
        i, k = _first_bad(bad)
        raise ValueError(
            f"median_won_days must be days ≥ 0 (NaN where there is no median); position {i} "
            f"holds {float(median[i])!r} ({k} bad value(s))"
        )
    return median


def median_close_mae(
    time: npt.ArrayLike, event: npt.ArrayLike, median_won_days: npt.ArrayLike
) -> float:
    """Mean absolute error, in days, of the predicted median close day of won deals::

        MAE = mean_{i: won, median_i finite} | median_i − T_i |

    ``median_won_days`` is the predicted median day of the win given a win (NaN where the
    model has none); open and lost deals are left out. ``nan`` (with a warning) when no
    won deal has a finite median.
    """
    t, e = _check_outcomes(time, event)
    median = _check_median(median_won_days, t.size)
    value, n = _median_mae(t, e, median)
    if n == 0:
        return _undefined(
            "median close-day MAE",
            f"no won deal with a finite predicted median ({int((e == WON).sum())} won)",
        )
    return value


# --- report -----------------------------------------------------------------------------


def _horizon_label(h: Any) -> str:
    value = float(h)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def survival_report(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    p_won: Mapping[int, npt.ArrayLike],
    *,
    score: npt.ArrayLike,
    median_won_days: npt.ArrayLike | None = None,
    tau_days: float | None = None,
) -> dict[str, Any]:
    """All survival metrics of one scorer in a JSON-able dict (plain ints and floats).

    Inputs: ``time``, ``event`` as above; ``p_won`` maps a horizon in days h to P(won
    within h) per deal; ``score`` ranks deals for the c-index; ``median_won_days``
    (optional) the predicted median win day; ``tau_days`` (optional) the c-index window.

    Keys: ``n``, ``n_won``, ``n_lost``, ``n_censored``, ``c_index``; per horizon h:
    ``brier_{h}d`` (IPCW), ``ece_{h}d``, ``observed_{h}d``, ``predicted_{h}d`` and
    ``n_known_{h}d`` (from :func:`calibration_at`); with ``median_won_days`` also
    ``median_close_mae_days`` and ``n_won_for_mae``. Undefined values are ``nan`` and warn.
    """
    t, e = _check_outcomes(time, event)
    s = _check_values("score", score, t.size)
    tau = None if tau_days is None else _check_days("tau_days", tau_days)
    out: dict[str, Any] = {
        "n": int(t.size),
        "n_won": int((e == WON).sum()),
        "n_lost": int((e == LOST).sum()),
        "n_censored": int((e == CENSORED).sum()),
    }
    concordant, comparable = _concordance_counts(t, e, s, tau)
    out["c_index"] = (
        concordant / comparable
        if comparable > 0
        else _undefined("won concordance index", "no comparable pairs")
    )
    for h, probs in p_won.items():
        horizon = _check_days(f"p_won key {h!r}", h)
        p = _check_values(f"p_won[{h!r}]", probs, t.size, probability=True)
        label = _horizon_label(h)
        out[f"brier_{label}d"] = (
            _ipcw_brier(t, e, p, horizon) if t.size else _undefined("IPCW Brier score", "no rows")
        )
        calib = _calibration(t, e, p, horizon, 10)
        out[f"ece_{label}d"] = float(calib["ece"])
        out[f"observed_{label}d"] = float(calib["observed_rate"])
        out[f"predicted_{label}d"] = float(calib["mean_predicted"])
        out[f"n_known_{label}d"] = int(calib["n"])
    if median_won_days is not None:
        median = _check_median(median_won_days, t.size)
        mae, n_mae = _median_mae(t, e, median)
        if n_mae == 0:
            mae = _undefined("median close-day MAE", "no won deal with a finite predicted median")
        out["median_close_mae_days"] = mae
        out["n_won_for_mae"] = n_mae
    return out


__all__ = [
    "CensoringSurvival",
    "brier_score_won",
    "calibration_at",
    "censoring_survival",
    "concordance_index_won",
    "median_close_mae",
    "survival_report",
]
