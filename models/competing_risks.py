"""Competing-risk curves on a weekly grid: won and lost compete, open deals are censored.

Conventions shared by the close-time model, its baselines and its metrics:

- a deal's follow-up starts at its snapshot time ``as_of``; durations are in **days** from it;
- event codes: :data:`CENSORED` (still open when observation ended), :data:`WON`, :data:`LOST`;
- discrete-time hazards are per week ``k = 0 .. K-1`` covering days ``[7k, 7k + 7)``:
  ``h_won[:, k]`` is P(won in week k | open at its start), likewise ``h_lost``;
- cumulative incidence functions ``cif_won[:, k]`` = P(won by the end of week k).

Nothing here reads data; everything is vectorised over deals.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

CENSORED: Final = 0
WON: Final = 1
LOST: Final = 2
EVENT_NAMES: Final[dict[int, str]] = {CENSORED: "open", WON: "won", LOST: "lost"}
WEEK_DAYS: Final = 7.0


def cumulative_incidence(h_won: FloatArray, h_lost: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(cif_won, cif_lost)`` at the end of each week from weekly hazards ``(n, K)``.

    ``S_k = Π_{j≤k} (1 − h_won_j − h_lost_j)``; ``cif_won_k = Σ_{j≤k} S_{j−1} h_won_j``.
    Hazards are clipped so that their sum per week is at most one.
    """
    hw = np.clip(np.asarray(h_won, dtype=np.float64), 0.0, 1.0)
    hl = np.clip(np.asarray(h_lost, dtype=np.float64), 0.0, 1.0)
    total = hw + hl
    over = total > 1.0
    if over.any():
        hw = np.where(over, hw / total, hw)
        hl = np.where(over, hl / total, hl)
    survival = np.cumprod(1.0 - hw - hl, axis=1)
    before = np.concatenate([np.ones((hw.shape[0], 1)), survival[:, :-1]], axis=1)
    return np.cumsum(before * hw, axis=1), np.cumsum(before * hl, axis=1)


def curve_at(cif: FloatArray, days: npt.ArrayLike) -> FloatArray:
    """The curve at ``days`` (scalar or one value per row), linear within each week.

    ``cif`` ``(n, K)`` holds values at the end of weeks ``1..K`` (0 at day 0); days beyond
    the grid take the last value. Returns ``(n,)``.
    """
    n, k = cif.shape
    grid = np.concatenate([np.zeros((n, 1)), cif], axis=1)
    t = np.broadcast_to(np.asarray(days, dtype=np.float64), (n,))
    pos = np.clip(np.nan_to_num(t, nan=0.0) / WEEK_DAYS, 0.0, float(k))
    lo = np.minimum(np.floor(pos).astype(np.int64), k - 1)
    frac = pos - lo
    rows = np.arange(n)
    return grid[rows, lo] + frac * (grid[rows, lo + 1] - grid[rows, lo])


def eventual_win(cif_won: FloatArray, cif_lost: FloatArray, tail_weeks: int = 4) -> FloatArray:
    """P(eventually won): the won incidence by the horizon plus the still-open share split
    in the ratio won : lost of the last ``tail_weeks`` weeks' incidence (the hazards of a
    deal that old are assumed to stay in that ratio; a deal with no closing in those weeks
    splits like its whole horizon)."""
    open_left = np.clip(1.0 - cif_won[:, -1] - cif_lost[:, -1], 0.0, 1.0)
    k = min(tail_weeks, cif_won.shape[1] - 1)
    dw = cif_won[:, -1] - cif_won[:, -1 - k] if k > 0 else cif_won[:, -1]
    dl = cif_lost[:, -1] - cif_lost[:, -1 - k] if k > 0 else cif_lost[:, -1]
    share = np.where(
        dw + dl > 1e-12,
        dw / np.maximum(dw + dl, 1e-12),
        np.where(
            cif_won[:, -1] + cif_lost[:, -1] > 1e-12,
            cif_won[:, -1] / np.maximum(cif_won[:, -1] + cif_lost[:, -1], 1e-12),
            0.5,
        ),
    )
    return np.clip(cif_won[:, -1] + open_left * share, 0.0, 1.0)


def won_time_quantiles(cif_won: FloatArray, quantiles: npt.ArrayLike) -> FloatArray:
    """Days from the snapshot by which a deal *that is won within the horizon* is won with
    each probability in ``quantiles``: the inverse of ``cif_won(t) / cif_won(horizon)``,
    linear within weeks. Returns ``(n, len(quantiles))``; NaN where the won incidence by
    the horizon is (almost) zero."""
    q = np.asarray(quantiles, dtype=np.float64)
    n, k = cif_won.shape
    total = cif_won[:, -1]
    grid = np.concatenate([np.zeros((n, 1)), cif_won], axis=1) / np.maximum(total, 1e-12)[:, None]
    out = np.full((n, len(q)), np.nan)
    ok = total > 1e-9
    for j, level in enumerate(q):
        # first grid point whose normalised incidence reaches the level
        idx = np.argmax(grid >= level - 1e-12, axis=1)
        idx = np.clip(idx, 1, k)
        rows = np.arange(n)
        lo_v, hi_v = grid[rows, idx - 1], grid[rows, idx]
        frac = np.where(hi_v > lo_v, (level - lo_v) / np.maximum(hi_v - lo_v, 1e-12), 1.0)
        out[:, j] = np.where(ok, (idx - 1 + np.clip(frac, 0.0, 1.0)) * WEEK_DAYS, np.nan)
    return out
