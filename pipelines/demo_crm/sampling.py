"""Vectorised random draws shared by the generator's components."""

from __future__ import annotations

import numpy as np

from pipelines.demo_crm import parameters as P

DAY_S = 86_400
_CHUNK = 500_000


def categorical(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws from one distribution ``probs`` (length k), as int16 codes."""
    return rng.choice(len(probs), size=n, p=probs / probs.sum()).astype(np.int16)


def conditional(rng: np.random.Generator, table: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """One draw per row from ``table[parent[row]]`` (rows of ``table`` sum to 1), int16 codes.

    Loops over parent levels, not rows. ``parent`` must hold valid row indices.
    """
    u = rng.random(len(parent))
    cum = np.cumsum(table, axis=1)
    cum[:, -1] = 1.0
    out = np.empty(len(parent), dtype=np.int16)
    for level in range(table.shape[0]):
        rows = parent == level
        out[rows] = np.searchsorted(cum[level], u[rows], side="right")
    return out


def softmax_choice(
    rng: np.random.Generator, log_weights: np.ndarray, slopes: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """One draw per row with P(k) ∝ exp(log_weights[k] + slopes[k]·x[row]), int16 codes.

    Works in chunks so memory stays O(chunk × k).
    """
    u = rng.random(len(x))
    out = np.empty(len(x), dtype=np.int16)
    for lo in range(0, len(x), _CHUNK):
        xs = x[lo : lo + _CHUNK, None]
        logits = log_weights[None, :] + slopes[None, :] * xs
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        cum = np.cumsum(p, axis=1)
        cum /= cum[:, -1:]
        out[lo : lo + _CHUNK] = (u[lo : lo + _CHUNK, None] > cum).sum(axis=1)
    return np.minimum(out, len(log_weights) - 1)


def time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after midnight for ``n`` events, following office hours (int64)."""
    hours = rng.choice(24, size=n, p=P.HOUR_WEIGHTS / P.HOUR_WEIGHTS.sum())
    return hours.astype(np.int64) * 3600 + rng.integers(0, 3600, size=n)


def in_office_hours(
    rng: np.random.Generator, t_s: np.ndarray, lo_s: np.ndarray, hi_s: np.ndarray
) -> np.ndarray:
    """Move each time to an office-hours time of the same day when that stays in [lo, hi].

    Where the office-hours time would fall outside, the original time (clipped to [lo, hi])
    is kept, so nothing piles up on the bounds.
    """
    t_s = np.clip(t_s, lo_s, hi_s)
    day = t_s - np.mod(t_s, DAY_S)
    moved = day + time_of_day(rng, len(t_s))
    return np.where((moved >= lo_s) & (moved <= hi_s), moved, t_s)


def truncated_exponential(
    rng: np.random.Generator, scale: np.ndarray | float, upper: np.ndarray
) -> np.ndarray:
    """Draws from Exp(scale) conditioned to lie in [0, upper] (same units), by inversion."""
    u = rng.random(len(upper))
    mass = -np.expm1(-upper / scale)
    return -scale * np.log1p(-u * mass)
