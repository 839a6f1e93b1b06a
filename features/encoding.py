"""Turning raw feature columns into the float matrix LightGBM reads, with JSON-stored state.

Categorical columns become integer codes (as floats) from levels fitted on training data;
missing and unseen values become NaN, which LightGBM treats as missing. No pandas
``category`` dtype is used, so the request path never pays for building one.

:meth:`FeatureEncoder.encode` is the one encoding: it takes column arrays (the request
path calls it directly) and looks categorical values up in dictionaries built once from
the fitted levels. :meth:`FeatureEncoder.transform` is its thin wrapper for a feature
frame (training, evaluation, batch scoring).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

_NAN = math.nan


def _is_missing(value: Any) -> bool:
    """None, NaN, ``pd.NA`` and ``NaT`` — what pandas' ``notna`` calls missing."""
    return value is None or bool(pd.isna(value))


@dataclass
class FeatureEncoder:
    """Column order, categorical levels and readable names; fitted state ends in ``_``."""

    numeric: list[str]
    categorical: list[str]
    levels_: dict[str, list[str]] = field(default_factory=dict)
    _codes: dict[str, dict[str, float]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def feature_names(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def categorical_indices(self) -> list[int]:
        return list(range(len(self.numeric), len(self.numeric) + len(self.categorical)))

    def fit(self, frame: pd.DataFrame, *, min_count: int = 20) -> FeatureEncoder:
        """Learn the levels of each categorical column (levels seen fewer than ``min_count``
        times are treated as unseen, so rare codes cannot be memorised). Sorted for
        determinism. Does not mutate ``frame``."""
        for name in self.categorical:
            counts = frame[name].dropna().astype("str").value_counts()
            self.levels_[name] = sorted(counts[counts >= min_count].index.tolist())
        self._codes = None
        return self

    def prepare(self) -> FeatureEncoder:
        """Build the level → code dictionaries now (they are otherwise built on first use)."""
        self._lookups()
        return self

    def _lookups(self) -> dict[str, dict[str, float]]:
        """level → code per categorical column, built once from ``levels_``."""
        if self._codes is None:
            if not self.levels_ and self.categorical:
                raise RuntimeError("FeatureEncoder used before fit (or from_dict)")
            self._codes = {
                name: {level: float(i) for i, level in enumerate(self.levels_[name])}
                for name in self.categorical
            }
        return self._codes

    def encode(self, columns: Mapping[str, Any]) -> np.ndarray:
        """The ``(rows, features)`` float64 matrix in :attr:`feature_names` order from one
        array (or sequence) per feature: numerics as numbers (None / NaN missing),
        categoricals as values looked up by their string form (missing and unseen → NaN).
        The one encoding path: :meth:`transform` calls it, the service calls it directly."""
        lookups = self._lookups()
        n_rows = len(columns[self.feature_names[0]]) if self.feature_names else 0
        out = np.empty((n_rows, len(self.feature_names)), dtype=np.float64)
        for j, name in enumerate(self.numeric):
            out[:, j] = np.asarray(columns[name], dtype=np.float64)
        offset = len(self.numeric)
        for j, name in enumerate(self.categorical):
            out[:, offset + j] = _codes(columns[name], lookups[name])
        return out

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """:meth:`encode` of a feature frame (numerics must be numeric; ``pd.NA`` counts as
        missing)."""
        columns: dict[str, np.ndarray] = {
            name: pd.to_numeric(frame[name], errors="raise").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
            for name in self.numeric
        }
        for name in self.categorical:
            columns[name] = frame[name].to_numpy(dtype=object)
        return self.encode(columns)

    def decode(self, name: str, code: float) -> str | None:
        """The level behind a categorical code (None for NaN / missing)."""
        if np.isnan(code):
            return None
        return self.levels_[name][int(code)]

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": self.numeric, "categorical": self.categorical, "levels": self.levels_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureEncoder:
        enc = cls(numeric=list(data["numeric"]), categorical=list(data["categorical"]))
        enc.levels_ = {k: list(v) for k, v in data["levels"].items()}
        return enc


def _codes(values: Any, lookup: dict[str, float]) -> np.ndarray:
    """Codes of ``values`` in ``lookup`` (strings as they are, other values by ``str``),
    NaN for missing and unseen values."""
    get = lookup.get
    return np.fromiter(
        (
            get(v, _NAN) if type(v) is str else (_NAN if _is_missing(v) else get(str(v), _NAN))
            for v in values
        ),
        dtype=np.float64,
        count=len(values),
    )
