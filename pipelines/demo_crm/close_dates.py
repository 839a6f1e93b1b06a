"""Reps' expected close dates: the date entered at creation and the slips recorded later.

At creation a rep enters ``created + optimism × (the deal's mean time to win) + noise`` as a
date. When that date passes while the deal is still open, the rep moves it with a rep-level
probability (a ``close_date_changed`` activity on or after the passed date, carrying the new
date), else leaves it passed for good. Each move can pass and be moved again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.demo_crm import parameters as P
from pipelines.demo_crm.frames import NULL_S
from pipelines.demo_crm.sampling import DAY_S, in_office_hours


@dataclass(frozen=True)
class CloseDateChanges:
    """One row per move: deal index, when it was recorded, the new date (days since 1970)."""

    deal: np.ndarray
    occurred_s: np.ndarray
    new_day: np.ndarray


def initial_close_days(
    rng: np.random.Generator,
    created_s: np.ndarray,
    mean_days_to_win: np.ndarray,
    optimism: np.ndarray,
) -> np.ndarray:
    """The expected close date first entered, as days since 1970, at least the next day."""
    days = optimism * mean_days_to_win
    days = days + rng.normal(0.0, P.EXPECTED_CLOSE_NOISE_SD, size=len(days)) * mean_days_to_win
    target = created_s + np.round(np.maximum(days, 0.0) * DAY_S).astype(np.int64)
    return np.maximum(target // DAY_S, created_s // DAY_S + 1)


def close_date_changes(
    rng: np.random.Generator,
    first_day: np.ndarray,
    closed_s: np.ndarray,
    p_move: np.ndarray,
    cutoff_s: int,
) -> CloseDateChanges:
    """Simulate the moves of every deal's expected close date up to the snapshot.

    ``first_day`` the date entered at creation, ``closed_s`` when the deal closed (``NULL_S``
    if open), ``p_move`` the owning rep's probability of moving a passed date. Loops over
    rounds of moves, not deals.
    """
    current = first_day.copy()
    alive = np.arange(len(first_day))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for _ in range(P.MAX_SLIP_ROUNDS):
        passed_s = (current[alive] + 1) * DAY_S  # midnight after the date
        end_s = np.where(closed_s[alive] == NULL_S, cutoff_s, closed_s[alive])
        moves = rng.random(alive.size) < p_move[alive]
        delay = np.round(rng.exponential(P.SLIP_NOTICE_MEAN_DAYS, size=alive.size) * DAY_S)
        when = passed_s + delay.astype(np.int64)
        ok = moves & (passed_s < end_s) & (when < end_s)
        when = in_office_hours(rng, when, passed_s, end_s - 1)
        extension = P.SLIP_EXTENSION_MIN_DAYS + rng.exponential(
            P.SLIP_EXTENSION_MEAN_DAYS, size=alive.size
        )
        new_day = when // DAY_S + np.round(extension).astype(np.int64)
        alive, when, new_day = alive[ok], when[ok], new_day[ok]
        if not alive.size:
            break
        parts.append((alive, when, new_day))
        current[alive] = new_day
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return CloseDateChanges(empty, empty, empty)
    deal, occurred, new = (np.concatenate(c) for c in zip(*parts, strict=True))
    return CloseDateChanges(deal, occurred, new)
