"""Turning a raw feature frame into the float matrix LightGBM reads, with JSON-stored state.

Categorical columns become integer codes (as floats) from levels fitted on training data;
missing and unseen values become NaN, which LightGBM treats as missing. No pandas
``category`` dtype is used, so the request path never pays for building one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class FeatureEncoder:
    """Column order, categorical levels and readable names; fitted state ends in ``_``."""

    numeric: list[str]
    categorical: list[str]
    levels_: dict[str, list[str]] = field(default_factory=dict)

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
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The ``(rows, features)`` float64 matrix in :attr:`feature_names` order."""
        if not self.levels_ and self.categorical:
            raise RuntimeError("FeatureEncoder.transform called before fit (or from_dict)")
        out = np.empty((len(frame), len(self.feature_names)), dtype=np.float64)
        for j, name in enumerate(self.numeric):
            out[:, j] = pd.to_numeric(frame[name], errors="raise").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        offset = len(self.numeric)
        for j, name in enumerate(self.categorical):
            levels = pd.Index(self.levels_[name])
            values = frame[name]
            codes = levels.get_indexer(values.astype("str").where(values.notna(), None))
            col = codes.astype(np.float64)
            col[codes < 0] = np.nan
            out[:, offset + j] = col
        return out

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
