"""Were the open deals' chances as right for large deals as for small ones?

A forecast's total can be right on average while its large deals are over-forecast and its
small ones under-forecast: the recalibration of the chances (:mod:`models.backtest`) is
fitted on deal outcomes, one deal one vote, and large deals are few. In the bookings a
deal's chance counts for its amount, so the few large deals move the forecast most. This
module sets, band of deal size by band, the wins the forecast expected of the open deals
(the sum of the chances it used) beside the wins they had.

Inputs are the open deals of backtest periods, pooled (a deal open at the start of three
periods counts three times: "deal-periods"). The bands are cut at quantiles of the pooled
recorded amounts (:func:`size_edges`, :data:`SIZE_QUANTILES`); a band holds the amounts
above the cut below it and up to its own, so when many deals share an amount the bands'
shares stray from their names, and each band says its ``share``. Deals without a recorded
amount (0 or missing: they add nothing to the bookings) form a band of their own. ``z`` is
the gap in units of the deals' own Bernoulli spread, ``(wins − expected) / sqrt(Σ p(1 −
p))``, as if the deals were independent; the dependence ``ρ`` between them makes the real
spread somewhat wider, so read ``|z|`` below about 2 as noise. Needs the periods to be over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypedDict

import numpy as np
import numpy.typing as npt

#: Quantiles of the pooled recorded amounts where the size bands are cut.
SIZE_QUANTILES: Final[tuple[float, ...]] = (0.5, 0.8, 0.95, 0.99)
#: The bands' names, smallest first (MLflow-safe: they become metric keys).
BAND_NAMES: Final[tuple[str, ...]] = (
    "bottom_50pct",
    "50_to_80pct",
    "80_to_95pct",
    "95_to_99pct",
    "top_1pct",
)
NO_AMOUNT: Final = "no_amount"
#: How a report names each band.
BAND_LABELS: Final[dict[str, str]] = {
    "bottom_50pct": "smallest 50%",
    "50_to_80pct": "50–80%",
    "80_to_95pct": "80–95%",
    "95_to_99pct": "95–99%",
    "top_1pct": "largest 1%",
    NO_AMOUNT: "no amount",
}


class SizeBand(TypedDict):
    """One size band's figures (see :func:`calibration_by_size`)."""

    min_amount: float
    max_amount: float
    deal_periods: int
    share: float
    expected_wins: float
    wins: int
    wins_over_expected: float | None
    #: the deals' own spread of the wins, sqrt(Σ p(1 − p)); the unit of ``z``
    spread: float
    z: float | None
    expected_amount: float
    won_amount: float
    won_over_expected_amount: float | None


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _recorded(amount: np.ndarray) -> np.ndarray:
    return np.isfinite(amount) & (amount > 0)


def size_edges(amount: npt.ArrayLike) -> np.ndarray:
    """The cuts between the size bands: :data:`SIZE_QUANTILES` of the recorded amounts
    (empty when none is recorded). Cut once on all periods and pass to every
    :func:`calibration_by_size` call, so the same band holds the same amounts."""
    a = np.asarray(amount, dtype=np.float64)
    recorded = a[_recorded(a)]
    return np.quantile(recorded, SIZE_QUANTILES) if len(recorded) else np.zeros(0)


def _size_band(
    amounts: tuple[float, float],
    deal_periods: int,
    total: int,
    wins: tuple[int, float, float],
    won_amount: float,
    expected_amount: float,
) -> SizeBand:
    """A band from its sums: ``amounts`` (smallest, largest), ``wins`` (wins, expected
    wins, spread), over ``total`` deal-periods in all."""
    won, expected, spread = wins
    return SizeBand(
        min_amount=amounts[0],
        max_amount=amounts[1],
        deal_periods=deal_periods,
        share=deal_periods / total,
        expected_wins=expected,
        wins=won,
        wins_over_expected=_ratio(won, expected),
        spread=spread,
        z=(won - expected) / spread if spread > 0 else None,
        expected_amount=expected_amount,
        won_amount=won_amount,
        won_over_expected_amount=_ratio(won_amount, expected_amount),
    )


def _band(p: np.ndarray, won: np.ndarray, amount: np.ndarray, total: int) -> SizeBand:
    return _size_band(
        (float(amount.min()), float(amount.max())),
        len(p),
        total,
        (int(won.sum()), float(p.sum()), float(np.sqrt(np.sum(p * (1.0 - p))))),
        won_amount=float(np.sum(amount[won])),
        expected_amount=float(np.sum(p * amount)),
    )


def calibration_by_size(
    chance: npt.ArrayLike, won: npt.ArrayLike, amount: npt.ArrayLike, edges: npt.ArrayLike
) -> dict[str, SizeBand]:
    """Per size band (keys :data:`BAND_NAMES`, smallest first, then :data:`NO_AMOUNT` when
    any deal has no recorded amount; empty bands are left out): the band's smallest and
    largest amount, its number of deal-periods and their share of all, the wins the
    forecast expected (the sum of ``chance``) and the wins it had, their ratio (``None``
    when nothing was expected), ``z`` (see the module), and the same for the amounts: the
    expected (Σ chance × amount) and the won.

    One entry per open deal and period, all the same length: ``chance`` the chance of
    being won inside the period the forecast used, ``won`` whether it was, ``amount`` its
    recorded amount (0 or NaN: none). ``edges``: the cuts, from :func:`size_edges`. Empty
    input gives ``{}``."""
    p = np.asarray(chance, dtype=np.float64)
    y = np.asarray(won, dtype=bool)
    a = np.asarray(amount, dtype=np.float64)
    if not len(p) == len(y) == len(a):
        raise ValueError(
            f"chance, won and amount must be as long as each other (got {len(p)}, {len(y)}, "
            f"{len(a)}): one entry per open deal and period"
        )
    cuts = np.asarray(edges, dtype=np.float64)
    recorded = _recorded(a)
    if recorded.any() and len(cuts) != len(SIZE_QUANTILES):
        raise ValueError(
            f"edges must hold the {len(SIZE_QUANTILES)} cuts of size_edges (got {len(cuts)}); "
            "cut them with size_edges on all the amounts the bands are compared over"
        )
    out: dict[str, SizeBand] = {}
    band = np.searchsorted(cuts, a, side="left")  # a band's amounts: above its lower cut
    for k, name in enumerate(BAND_NAMES):
        m = recorded & (band == k)
        if m.any():
            out[name] = _band(p[m], y[m], a[m], len(p))
    if (~recorded).any():
        m = ~recorded
        out[NO_AMOUNT] = _band(p[m], y[m], np.zeros(int(m.sum())), len(p))
    return out


def pool_bands(results: list[Mapping[str, Mapping[str, Any]]]) -> dict[str, SizeBand]:
    """Several :func:`calibration_by_size` results (e.g. one per history) pooled band by
    band, by name: counts, wins and amounts add up, spreads add in quadrature, ``share`` is
    of all the deal-periods pooled, and the amounts span every result's band. Each result's
    bands are cut on its own amounts, so a band is the same share of sizes, not the same
    amounts."""
    total = sum(int(b["deal_periods"]) for r in results for b in r.values())
    out: dict[str, SizeBand] = {}
    for name in (*BAND_NAMES, NO_AMOUNT):
        bands = [r[name] for r in results if name in r]
        if not bands:
            continue
        out[name] = _size_band(
            (
                min(float(b["min_amount"]) for b in bands),
                max(float(b["max_amount"]) for b in bands),
            ),
            int(sum(b["deal_periods"] for b in bands)),
            total,
            (
                int(sum(b["wins"] for b in bands)),
                float(sum(b["expected_wins"] for b in bands)),
                float(np.sqrt(sum(float(b["spread"]) ** 2 for b in bands))),
            ),
            won_amount=float(sum(b["won_amount"] for b in bands)),
            expected_amount=float(sum(b["expected_amount"] for b in bands)),
        )
    return out


def off_bands(bands: Mapping[str, Mapping[str, Any]], z_min: float = 2.0) -> list[str]:
    """The bands of a :func:`calibration_by_size` result (as returned or read back from
    JSON) whose wins were at least ``z_min`` spreads from the expected, most over-forecast
    first: where a forecast made the same way is likely to run high (``z`` < 0) or low."""
    off = [(float(b["z"]), name) for name, b in bands.items() if b.get("z") is not None]
    return [name for z, name in sorted(off) if abs(z) >= z_min]


def warned_bands(open_by_size: Mapping[str, Any] | None) -> list[tuple[str, Mapping[str, Any]]]:
    """What a forecast should warn about, from a backtest's ``open_by_size`` record
    (``{"all", "recent", "recent_periods"}``; ``None`` or ``{}`` for none): the recent
    periods' :func:`off_bands`, as ``(name, band)``, without :data:`NO_AMOUNT` (those deals
    add nothing to the bookings). The recent periods are the nearest to how a forecast
    made now will fare."""
    bands = (open_by_size or {}).get("recent") or {}
    return [(name, bands[name]) for name in off_bands(bands) if name != NO_AMOUNT]


__all__ = [
    "BAND_LABELS",
    "BAND_NAMES",
    "NO_AMOUNT",
    "SIZE_QUANTILES",
    "SizeBand",
    "calibration_by_size",
    "off_bands",
    "pool_bands",
    "size_edges",
    "warned_bands",
]
