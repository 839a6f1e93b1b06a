"""Probabilistic bookings forecast for a period: a vectorised Monte Carlo over deal laws.

Bookings of a period ``[start, end)`` seen at ``as_of`` are three parts:

- **closed** — deals already won in ``[start, as_of)``: known, no uncertainty;
- **open pipeline** — each deal open at ``as_of`` wins in the period with its own
  probability ``q_i`` (from the close-time model's won curve, or the stage-weighted rule)
  and then books its recorded amount;
- **new** — deals created after ``as_of`` and won in the period: a Poisson number of them
  (expected creations × their average chance to be won in time, :mod:`models.new_deals`),
  each booking an amount drawn from the recent won amounts.

**Dependence.** A quarter goes well or badly for many deals at once. One period factor
``z ~ N(0, 1)`` is shared by every deal of a draw (a one-factor Gaussian copula, as in
Vasicek's credit model): given ``z`` a deal wins with
``q_i(z) = Φ((Φ⁻¹(q_i) + √ρ·z) / √(1 − ρ))``, independently of the others. Each deal's
own chance is unchanged (``E[q_i(z)] = q_i``); ``ρ = 0`` is independence, and ``ρ`` is
fitted on backtests (:mod:`models.backtest`) so that the stated intervals hold their
coverage. The new-deal count uses the same ``z``. The backtest also fits a ``level``, a
multiplier of the uncertain parts' amounts that corrects what bias the past periods show.

**Sampling.** ``z`` is stratified (one random point in each of ``K`` equal-probability
strata), so each stratum has one vector of conditional probabilities. Within a stratum the
Bernoulli draws are 32-bit integer comparisons on raw SFC64 output, summed with one
float32 BLAS product against ``[amount, 1]``; strata run on two threads (NumPy releases
the GIL) in chunks of a few MiB, so 10,000 deals × 10,000 draws stays well under 64 MiB.

Amounts: bookings are the sum of *recorded* amounts, as the actuals are; a deal without an
amount counts in the deal counts and adds 0 (the report says how many there are).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

#: Quantiles every forecast reports.
QUANTILES: Final[tuple[float, ...]] = (0.1, 0.5, 0.9)
DEFAULT_DRAWS: Final = 10_000
DEFAULT_STRATA: Final = 100
#: The largest uint32; probabilities become ``floor(p · 2³²)`` thresholds capped here.
_U32_MAX: Final = np.float64(2**32 - 1)
_P_EPS: Final = 1e-12


@dataclass(frozen=True)
class Period:
    """``[start, end)``: midnight of the first day to midnight after the last day."""

    start: pd.Timestamp
    end: pd.Timestamp

    def __post_init__(self) -> None:
        if not self.end > self.start:
            raise ValueError(
                f"the period must end after it starts; got {self.start.date()} .. "
                f"{(self.end - pd.Timedelta(days=1)).date()}. Give --period-end on or after "
                "--period-start."
            )

    @classmethod
    def from_days(cls, first: Any, last: Any) -> Period:
        """The period from its first to its last day, both included."""
        start = pd.Timestamp(first).normalize()
        end = pd.Timestamp(last).normalize() + pd.Timedelta(days=1)
        return cls(start, end)

    @property
    def last_day(self) -> pd.Timestamp:
        return self.end - pd.Timedelta(days=1)

    def label(self) -> str:
        return f"{self.start.date()}..{self.last_day.date()}"


@dataclass(frozen=True)
class ClosedDeals:
    """Deals won in ``[start, as_of)``: known bookings."""

    deal_id: np.ndarray
    amount: np.ndarray  # float64, NaN where not recorded
    stage: np.ndarray
    owner: np.ndarray
    product: np.ndarray

    @property
    def booked(self) -> float:
        return float(np.nansum(self.amount))


@dataclass(frozen=True)
class OpenDeals:
    """Deals open at ``as_of`` with their chance ``p_won`` of being won in the period."""

    deal_id: np.ndarray
    amount: np.ndarray  # float64, NaN where not recorded
    p_won: np.ndarray  # float64 in [0, 1]
    stage: np.ndarray
    owner: np.ndarray
    product: np.ndarray
    flags: np.ndarray  # object: risk-flag codes joined by ",", "" when none

    def __post_init__(self) -> None:
        p = np.asarray(self.p_won, dtype=np.float64)
        if len(p) and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
            raise ValueError("every open deal needs a probability in [0, 1]; got NaN or outside")

    @property
    def booked_amount(self) -> np.ndarray:
        """Amounts as they add to bookings (0 where not recorded)."""
        return np.nan_to_num(np.asarray(self.amount, dtype=np.float64), nan=0.0)


@dataclass(frozen=True)
class NewDealLaw:
    """Deals created in ``[as_of, end)``: their expected number, their average chance to
    be won inside the period, and the pool of amounts a won deal books."""

    expected_created: float
    p_won: float
    won_amounts: np.ndarray  # recorded amounts (0 where not recorded) of recent wins
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def expected_won(self) -> float:
        return self.expected_created * self.p_won


@dataclass(frozen=True)
class ForecastInputs:
    """Everything a forecast of one period needs; ``method`` names how ``p_won`` was set."""

    period: Period
    as_of: pd.Timestamp
    closed: ClosedDeals
    open: OpenDeals
    new: NewDealLaw | None
    method: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Draws:
    """Monte Carlo draws of the uncertain parts (one value per draw)."""

    open_amount: np.ndarray
    open_count: np.ndarray
    new_amount: np.ndarray
    new_count: np.ndarray
    closed_amount: float
    closed_count: int
    z: np.ndarray  # the period factor of each draw
    level: float = 1.0  # the multiplier applied to the uncertain amounts

    @property
    def amount(self) -> np.ndarray:
        return self.closed_amount + self.open_amount + self.new_amount

    @property
    def count(self) -> np.ndarray:
        return self.closed_count + self.open_count + self.new_count


# --------------------------------------------------------------------------------------
# Monte Carlo
# --------------------------------------------------------------------------------------


def strata_factor(
    draws: int, strata: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(z, sizes)``: one standard-normal point drawn inside each of ``K`` equal-probability
    strata and the number of draws each stratum gets (``sum(sizes) == draws``)."""
    k = max(1, min(strata, draws))
    u = (np.arange(k) + rng.random(k)) / k
    edges = np.round(np.linspace(0, draws, k + 1)).astype(np.int64)
    return ndtri(u), np.diff(edges)


def conditional_p(p: np.ndarray, z: float | np.ndarray, rho: float) -> np.ndarray:
    """``Φ((Φ⁻¹(p) + √ρ·z) / √(1 − ρ))``: the chance given the period factor ``z`` (a
    scalar, or one value per element of ``p``)."""
    if rho <= 0:
        return np.asarray(p, dtype=np.float64)
    q = np.clip(np.asarray(p, dtype=np.float64), _P_EPS, 1 - _P_EPS)
    out = ndtr((ndtri(q) + np.sqrt(rho) * z) / np.sqrt(1.0 - rho))
    return np.where(np.asarray(p) <= 0, 0.0, np.where(np.asarray(p) >= 1, 1.0, out))


def _thresholds(p: np.ndarray) -> np.ndarray:
    return np.minimum(np.floor(p * 2.0**32), _U32_MAX).astype(np.uint32)


def bernoulli_sums(
    p: np.ndarray,
    weights: np.ndarray,
    *,
    z: np.ndarray,
    sizes: np.ndarray,
    rho: float,
    seed: int,
    threads: int = 2,
    chunk_bytes: int = 4 << 20,
) -> np.ndarray:
    """Per draw, ``Σ_i weights[i] · B_i`` with ``B_i ~ Bernoulli(q_i(z))`` (see the module).

    ``p`` ``(n,)`` marginal chances; ``weights`` ``(n, m)``; ``z`` / ``sizes`` from
    :func:`strata_factor`. Returns ``(sum(sizes), m)`` float64, draws ordered by stratum.
    Deterministic for a given ``seed`` whatever ``threads`` is (each stratum has its own
    stream). Extra memory: about ``threads × 2 × chunk_bytes``.
    """
    p = np.asarray(p, dtype=np.float64)
    n = len(p)
    w = np.ascontiguousarray(weights, dtype=np.float32)
    total = int(np.sum(sizes))
    out = np.zeros((total, w.shape[1]), dtype=np.float64)
    if n == 0 or total == 0:
        return out
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    streams = np.random.SeedSequence(seed).spawn(len(sizes))
    rows_per_chunk = max(1, chunk_bytes // (4 * n))
    errors: list[BaseException] = []
    base = ndtri(np.clip(p, _P_EPS, 1 - _P_EPS))
    sure, never = p >= 1, p <= 0

    def chances(zk: float) -> np.ndarray:
        if rho <= 0:
            return p
        q = ndtr((base + np.sqrt(rho) * zk) / np.sqrt(1.0 - rho))
        q[sure], q[never] = 1.0, 0.0
        return q

    def work(first: int) -> None:
        try:
            buf = np.empty((rows_per_chunk, n), dtype=np.float32)
            for k in range(first, len(sizes), threads):
                limit = _thresholds(chances(float(z[k])))
                bits = np.random.SFC64(streams[k])
                done = 0
                while done < sizes[k]:
                    r = int(min(rows_per_chunk, sizes[k] - done))
                    words = (r * n + 1) // 2
                    u = bits.random_raw(words).view(np.uint32)[: r * n].reshape(r, n)
                    np.less(u, limit, out=buf[:r], casting="unsafe")
                    start = offsets[k] + done
                    out[start : start + r] = buf[:r] @ w
                    done += r
        except BaseException as exc:  # pragma: no cover - re-raised below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(max(1, threads))]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    if errors:
        raise errors[0]
    return out


def simulate(
    inputs: ForecastInputs,
    *,
    rho: float,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    strata: int = DEFAULT_STRATA,
    threads: int = 2,
    level: float = 1.0,
) -> Draws:
    """Draws of the period's bookings and deal counts under dependence ``rho``; the
    uncertain parts' amounts are multiplied by ``level`` (the backtest's bias correction,
    :mod:`models.backtest`; 1 = none). Counts are not scaled."""
    if level <= 0:
        raise ValueError(f"level must be positive; got {level}")
    if not 0 <= rho < 1:
        raise ValueError(f"rho must be in [0, 1); got {rho}")
    if draws < 1:
        raise ValueError(f"draws must be at least 1; got {draws}")
    rng = np.random.default_rng(seed)
    z, sizes = strata_factor(draws, strata, rng)
    deals = inputs.open
    weights = np.column_stack([deals.booked_amount, np.ones(len(deals.p_won))])
    sums = bernoulli_sums(
        deals.p_won, weights, z=z, sizes=sizes, rho=rho, seed=seed + 1, threads=threads
    )
    z_draw = np.repeat(z, sizes)
    new_amount: np.ndarray = np.zeros(draws)
    new_count: np.ndarray = np.zeros(draws, dtype=np.int64)
    law = inputs.new
    if law is not None and law.expected_won > 0:
        p_z = conditional_p(np.full(len(z), law.p_won), z, rho)
        lam = np.repeat(law.expected_created * p_z, sizes)
        new_count = rng.poisson(lam)
        if new_count.sum() and len(law.won_amounts):
            picks = rng.choice(law.won_amounts, size=int(new_count.sum()))
            owner = np.repeat(np.arange(draws), new_count)
            new_amount = np.bincount(owner, weights=picks, minlength=draws)
    return Draws(
        open_amount=level * sums[:, 0],
        open_count=np.rint(sums[:, 1]).astype(np.int64),
        new_amount=level * new_amount,
        new_count=new_count,
        closed_amount=inputs.closed.booked,
        closed_count=len(inputs.closed.deal_id),
        z=z_draw,
        level=level,
    )


# --------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------


def summarize(
    values: np.ndarray, quantiles: Sequence[float] = QUANTILES, target: float | None = None
) -> dict[str, Any]:
    """Mean, ``p10`` / ``p50`` / ``p90`` (and any other requested quantile under
    ``quantiles``), and ``p_target`` = P(value ≥ target) when a target is given."""
    v = np.asarray(values, dtype=np.float64)
    qs = sorted({*QUANTILES, *quantiles})
    levels = np.quantile(v, qs)
    out: dict[str, Any] = {"mean": float(v.mean())}
    for q, level in zip(qs, levels, strict=True):
        if q in QUANTILES:
            out[f"p{round(q * 100)}"] = float(level)
    out["quantiles"] = {f"{q:g}": float(level) for q, level in zip(qs, levels, strict=True)}
    out["p_target"] = None if target is None else float(np.mean(v >= target))
    return out


def _group_table(
    closed: pd.DataFrame, open_: pd.DataFrame, key: str, top: int
) -> list[dict[str, Any]]:
    """Expected bookings per value of ``key``: closed + Σ p·amount of open deals."""
    frame = pd.concat(
        [
            closed.assign(expected=closed["amount"], n_open=0, n_closed=1),
            open_.assign(expected=open_["p_won"] * open_["amount"], n_open=1, n_closed=0),
        ],
        ignore_index=True,
    )
    if frame.empty:
        return []
    frame[key] = frame[key].fillna("(none)").astype(str)
    grouped = (
        frame.groupby(key, sort=False)
        .agg(
            expected=("expected", "sum"),
            closed=("closed_amount", "sum"),
            n_closed=("n_closed", "sum"),
            n_open=("n_open", "sum"),
            expected_open_wins=("p_won", "sum"),
        )
        .sort_values("expected", ascending=False)
        .head(top)
    )
    return [
        {
            key: str(name),
            "expected": float(row.expected),
            "closed": float(row.closed),
            "n_closed": int(row.n_closed),
            "n_open": int(row.n_open),
            "expected_open_wins": float(row.expected_open_wins),
        }
        for name, row in grouped.iterrows()
    ]


def breakdown(inputs: ForecastInputs, draws: Draws, *, top: int = 20) -> dict[str, Any]:
    """Closed / open pipeline / new (each summarised over the draws), and expected bookings
    by stage, owner and product (closed amounts plus the open deals' ``p · amount``; new
    deals have no stage, owner or product yet and are shown apart)."""
    c, o = inputs.closed, inputs.open
    closed = pd.DataFrame(
        {
            "stage": "won",
            "owner": c.owner,
            "product": c.product,
            "amount": np.nan_to_num(c.amount.astype(np.float64), nan=0.0),
            "closed_amount": np.nan_to_num(c.amount.astype(np.float64), nan=0.0),
            "p_won": 0.0,
        }
    )
    open_ = pd.DataFrame(
        {
            "stage": o.stage,
            "owner": o.owner,
            "product": o.product,
            "amount": draws.level * o.booked_amount,  # the level applies to the open part
            "closed_amount": 0.0,
            "p_won": o.p_won,
        }
    )
    missing = int(np.isnan(np.asarray(o.amount, dtype=np.float64)).sum())
    return {
        "closed": {
            "amount": c.booked,
            "count": len(c.deal_id),
        },
        "open_pipeline": {
            **summarize(draws.open_amount),
            "count": summarize(draws.open_count),
            "n_open_deals": len(o.deal_id),
            "n_open_deals_without_amount": missing,
        },
        "new": {
            **summarize(draws.new_amount),
            "count": summarize(draws.new_count),
            "expected_created": 0.0 if inputs.new is None else inputs.new.expected_created,
            "p_won_in_period": 0.0 if inputs.new is None else inputs.new.p_won,
            "included": inputs.new is not None,
        },
        "by_stage": _group_table(closed, open_, "stage", top),
        "by_owner": _group_table(closed, open_, "owner", top),
        "by_product": _group_table(closed, open_, "product", top),
    }


def drivers(inputs: ForecastInputs, draws: Draws, *, top: int = 10) -> dict[str, Any]:
    """The open deals that carry the forecast.

    - ``expected``: largest ``p · amount`` (share of the forecast's mean);
    - ``spread``: largest share of the pipeline's variance, ``amount² · p(1 − p)``
      (the deal's own variance; the shared factor scales all of them alike);
    - ``at_risk``: the flagged deals (largest ``p · amount`` first), the share of the
      forecast's mean they carry in total and per flag (``by_flag``).
    """
    o = inputs.open
    amount = draws.level * o.booked_amount  # as the draws scale it
    expected = o.p_won * amount
    variance = amount**2 * o.p_won * (1 - o.p_won)
    mean_total = float(draws.amount.mean()) or 1.0
    var_total = float(variance.sum()) or 1.0

    def rows(order: np.ndarray) -> list[dict[str, Any]]:
        return [
            {
                "deal_id": str(o.deal_id[i]),
                "stage": None if o.stage[i] is None else str(o.stage[i]),
                "owner": None if o.owner[i] is None else str(o.owner[i]),
                "product": None if o.product[i] is None else str(o.product[i]),
                "amount": None if np.isnan(o.amount[i]) else float(o.amount[i]),
                "p_won_in_period": float(o.p_won[i]),
                "expected": float(expected[i]),
                "share_of_mean": float(expected[i] / mean_total),
                "share_of_variance": float(variance[i] / var_total),
                "flags": [f for f in str(o.flags[i]).split(",") if f],
            }
            for i in order
        ]

    codes = [[c for c in str(f).split(",") if c] for f in o.flags]
    flagged = np.flatnonzero(np.array([bool(c) for c in codes], dtype=bool))
    by_expected = flagged[np.argsort(-expected[flagged], kind="stable")]
    by_flag: dict[str, dict[str, float]] = {}
    for code in sorted({c for row in codes for c in row}):
        rows_with = np.array([code in row for row in codes], dtype=bool)
        by_flag[code] = {
            "n_deals": int(rows_with.sum()),
            "expected": float(expected[rows_with].sum()),
            "share_of_mean": float(expected[rows_with].sum() / mean_total),
        }
    return {
        "expected": rows(np.argsort(-expected, kind="stable")[:top]),
        "spread": rows(np.argsort(-variance, kind="stable")[:top]),
        "at_risk": {
            "n_deals": len(flagged),
            "expected": float(expected[flagged].sum()),
            "share_of_mean": float(expected[flagged].sum() / mean_total),
            "by_flag": by_flag,
            "deals": rows(by_expected[:top]),
        },
    }


__all__ = [
    "DEFAULT_DRAWS",
    "QUANTILES",
    "ClosedDeals",
    "Draws",
    "ForecastInputs",
    "NewDealLaw",
    "OpenDeals",
    "Period",
    "bernoulli_sums",
    "breakdown",
    "conditional_p",
    "drivers",
    "simulate",
    "strata_factor",
    "summarize",
]
