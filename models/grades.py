"""A–D grades from a probability, with configurable cut-offs.

With cut-offs ``(a, b, c)`` (defaults 0.75 / 0.50 / 0.25)::

    A  if p >= a
    B  if a > p >= b
    C  if b > p >= c
    D  if c > p

A probability exactly on a cut-off takes the higher grade. Grades are only as meaningful as
the probability is calibrated: grade calibrated model outputs, or BANT rule scores whose
mapping was fitted (``models.bant.fit_mapping``).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, model_validator

GRADES: Final[tuple[str, str, str, str]] = ("A", "B", "C", "D")

#: English and Simplified Chinese labels of the grades, for user-facing text.
GRADE_LABELS: Final[dict[str, tuple[str, str]]] = {
    "A": ("A — very likely", "A — 很可能"),
    "B": ("B — likely", "B — 较可能"),
    "C": ("C — possible", "C — 有可能"),
    "D": ("D — unlikely", "D — 不太可能"),
}


class GradeCutoffs(BaseModel):
    """Lower bounds of grades A, B and C (D is everything below ``c``).

    Each cut-off is a probability strictly between 0 and 1, and ``a > b > c``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    a: float = 0.75
    b: float = 0.50
    c: float = 0.25

    @model_validator(mode="after")
    def _check(self) -> GradeCutoffs:
        for name in ("a", "b", "c"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 < value < 1.0):
                raise ValueError(
                    f"grade cut-off {name!r} = {value!r} must be strictly between 0 and 1"
                )
        if not (self.a > self.b > self.c):
            raise ValueError(
                f"grade cut-offs must be strictly decreasing (a > b > c); got a={self.a}, "
                f"b={self.b}, c={self.c}"
            )
        return self

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.a, self.b, self.c)


DEFAULT_CUTOFFS: Final = GradeCutoffs()

# Index i of _BY_COUNT is the grade of a probability that reaches i of the cut-offs.
_BY_COUNT: Final = np.array(["D", "C", "B", "A"], dtype=object)


def grade_array(
    probabilities: npt.ArrayLike, cutoffs: GradeCutoffs = DEFAULT_CUTOFFS
) -> npt.NDArray[np.object_]:
    """Grade each probability.

    Input: probabilities in [0, 1], any shape. Output: an object array of the same shape
    holding ``"A"``…``"D"``. Raises ``ValueError`` naming the first position holding a
    NaN, infinite or out-of-range value (a missing score has no grade; filter it first).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    bad = ~np.isfinite(p) | (p < 0.0) | (p > 1.0)
    if bad.any():
        position = tuple(int(i) for i in np.argwhere(bad)[0])
        where = position[0] if len(position) == 1 else position
        raise ValueError(
            f"cannot grade probability {float(p[position])!r} at position {where}: "
            f"{int(bad.sum())} value(s) are NaN, infinite or outside [0, 1]"
        )
    ascending = np.array([cutoffs.c, cutoffs.b, cutoffs.a])
    reached = np.searchsorted(ascending, p, side="right")
    out: npt.NDArray[np.object_] = _BY_COUNT[reached]
    return out


def grade(probability: float, cutoffs: GradeCutoffs = DEFAULT_CUTOFFS) -> str:
    """The grade of one probability (same rule as :func:`grade_array`, without numpy
    overhead, for the per-request path)."""
    p = float(probability)
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ValueError(f"cannot grade probability {probability!r}: it must be in [0, 1]")
    if p >= cutoffs.a:
        return "A"
    if p >= cutoffs.b:
        return "B"
    if p >= cutoffs.c:
        return "C"
    return "D"
