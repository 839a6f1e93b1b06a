"""Baseline lead-conversion scorers, reported beside the LightGBM model (DESIGN.md §4).

Both read the feature frame of :func:`features.lead_features.build_lead_features` (numeric
float64 columns and categorical object columns) and return, per row, the probability that
the lead converts. Neither mutates its inputs; ``y`` is aligned with ``frame`` by position
(1 = converted, 0 = not).

- :class:`NaiveBayesBaseline` — Odoo's predictive lead scoring: per field value, its
  frequency among won and among lost leads, multiplied with the prior (naive Bayes). It
  is stored as JSON (:meth:`~NaiveBayesBaseline.to_dict`), never pickled.
- :class:`LogisticBaseline` — one-hot categoricals and standardised numerics into an
  L2-regularised logistic regression (scikit-learn). A report baseline: not persisted.

Leakage: both learn only from the rows they are fitted on; feed them the same time-ordered
training snapshots as the model they are compared with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

NB_FORMAT: Final = "leadcast.naive_bayes_baseline/1"
#: Log-odds are capped here so that probabilities stay strictly inside (0, 1):
#: expit(±35) is 6.3e-16 away from 0 or 1, still distinct from them in float64.
MAX_LOG_ODDS: Final = 35.0
#: The level a missing categorical value takes in the logistic baseline's one-hot encoding.
MISSING_LEVEL: Final = "(missing)"
#: A non-negative numeric column whose training skewness exceeds this gets ``log1p``.
LOG1P_MIN_SKEW: Final = 1.0


def _binary_target(y: npt.ArrayLike, n_rows: int) -> npt.NDArray[np.int64]:
    """``y`` as 0/1 integers, checked: same length as the frame, no missing, both classes."""
    raw = np.asarray(y)
    if raw.ndim != 1 or len(raw) != n_rows:
        raise ValueError(
            f"y must be 1-D with one label per frame row ({n_rows}); got shape {raw.shape}"
        )
    if raw.dtype == object or raw.dtype.kind not in "biuf":
        raise ValueError(f"y must hold 0/1 or booleans; got dtype {raw.dtype}")
    bad = ~np.isin(raw, (0, 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"y must hold only 0/1 (or booleans); row {i} holds {raw[i]!r} "
            f"({int(bad.sum())} bad value(s)); drop unlabelled rows before fitting"
        )
    labels = raw.astype(np.int64)
    n_pos = int(labels.sum())
    if n_pos in (0, n_rows):
        raise ValueError(
            f"y must contain both converted (1) and not converted (0) rows; got {n_pos} "
            f"converted of {n_rows}: widen the training window"
        )
    return labels


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], who: str) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise KeyError(
            f"{who}: the frame lacks column(s) {absent}; pass the feature frame built by "
            "features.lead_features.build_lead_features, or the same column lists it was "
            "fitted with"
        )


def _as_text(values: pd.Series) -> pd.Series:
    """Category values as strings (as :class:`features.encoding.FeatureEncoder` reads
    them), missing kept missing."""
    return values.astype("str").where(values.notna())


# --------------------------------------------------------------------------------------
# Odoo-style naive Bayes
# --------------------------------------------------------------------------------------


class NaiveBayesBaseline:
    """Odoo's predictive lead scoring: naive Bayes over categorical field frequencies.

    For a lead with values ``v_1 … v_k`` in the fitted columns::

        P(won | v) = P(won) Π P(v_j | won) / [P(won) Π P(v_j | won) + P(lost) Π P(v_j | lost)]

    computed in log space as a sum of log-likelihood ratios. Per column ``j`` with ``K_j``
    levels seen in training, ``P(v | c) = (n(v, c) + alpha) / (n(c) + alpha K_j)`` (Laplace
    smoothing). The prior ``P(c)`` is the unsmoothed class share.

    - A missing value (``None``/``NaN``) is a level of its own, learned like any other.
    - A value not seen in training (including missing, in a column that had none)
      contributes nothing: the column is skipped for that row, as Odoo does, so the score
      rests on the other columns and the prior.
    - Log-odds are capped at ±:data:`MAX_LOG_ODDS` so probabilities stay inside (0, 1).

    Where it differs from Odoo: Odoo skips unset fields and adds 0.1 to every count; here
    missing is informative (our contract fields are optional answers whose absence says
    something) and smoothing is Laplace with a configurable ``alpha``. Odoo's per-team
    tables are the caller's choice here: fit one model per segment if wanted.

    Fitted state: ``classes_`` (``[0, 1]``), ``class_count_``, ``log_prior_`` (log P(c) in
    ``classes_`` order), ``counts_[column][value] = (n(value, 0), n(value, 1))`` — the
    frequency table, ``None`` keying missing — and ``log_likelihood_[column][value] =
    (log P(value | 0), log P(value | 1))``.
    """

    def __init__(self, columns: Sequence[str], *, alpha: float = 1.0) -> None:
        if not columns:
            raise ValueError("NaiveBayesBaseline needs at least one categorical column")
        if len(set(columns)) != len(columns):
            raise ValueError(f"NaiveBayesBaseline columns repeat a name: {list(columns)}")
        if not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a finite number > 0 (Laplace smoothing); got {alpha}")
        self.columns = list(columns)
        self.alpha = float(alpha)

    def fit(self, frame: pd.DataFrame, y: npt.ArrayLike) -> Self:
        """Count each column's values among converted and non-converted rows.

        Inputs: ``frame`` holding :attr:`columns` (any dtype; values are compared as
        strings), ``y`` 0/1 per row by position. Returns ``self``. Does not mutate inputs.
        """
        _require_columns(frame, self.columns, "NaiveBayesBaseline.fit")
        labels = _binary_target(y, len(frame))
        self.classes_ = np.array([0, 1], dtype=np.int64)
        self.class_count_ = np.bincount(labels, minlength=2).astype(np.int64)
        self.counts_: dict[str, dict[str | None, tuple[int, int]]] = {}
        for name in self.columns:
            codes, uniques = pd.factorize(_as_text(frame[name]), use_na_sentinel=True)
            n_levels = len(uniques)
            codes = np.where(codes < 0, n_levels, codes)  # missing is the last level
            table = np.bincount(codes * 2 + labels, minlength=2 * (n_levels + 1))
            table = table.reshape(n_levels + 1, 2)
            levels: list[str | None] = [str(u) for u in uniques]
            order = sorted(range(n_levels), key=lambda i: levels[i] or "")
            column: dict[str | None, tuple[int, int]] = {
                levels[i]: (int(table[i, 0]), int(table[i, 1])) for i in order
            }
            if table[n_levels].sum() > 0:
                column[None] = (int(table[n_levels, 0]), int(table[n_levels, 1]))
            self.counts_[name] = column
        self._derive()
        return self

    def _derive(self) -> None:
        """Log prior, log-likelihoods and the lookup arrays scoring uses, from the counts."""
        n = self.class_count_.astype(np.float64)
        self.log_prior_ = np.log(n) - np.log(n.sum())
        self.log_likelihood_: dict[str, dict[str | None, tuple[float, float]]] = {}
        self._lookup: dict[str, tuple[pd.Index, npt.NDArray[np.float64], float]] = {}
        for name, column in self.counts_.items():
            log_denominator = np.log(n + self.alpha * len(column))
            loglik: dict[str | None, tuple[float, float]] = {}
            for value, (n0, n1) in column.items():
                lp = np.log(np.array([n0, n1], dtype=np.float64) + self.alpha) - log_denominator
                loglik[value] = (float(lp[0]), float(lp[1]))
            self.log_likelihood_[name] = loglik
            seen = [v for v in loglik if v is not None]
            ratio = np.array([loglik[v][1] - loglik[v][0] for v in seen], dtype=np.float64)
            missing = loglik.get(None)
            missing_ratio = missing[1] - missing[0] if missing is not None else 0.0
            self._lookup[name] = (pd.Index(seen, dtype=object), ratio, missing_ratio)

    def predict_proba(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Probability of conversion per row of ``frame`` (1-D float64, strictly inside
        (0, 1)). Values unseen in training contribute nothing. Does not mutate ``frame``."""
        return np.asarray(expit(self.log_odds(frame)), dtype=np.float64)

    def log_odds(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        """``log P(won | v) − log P(lost | v)`` per row, capped at ±:data:`MAX_LOG_ODDS`."""
        if not hasattr(self, "_lookup"):
            raise RuntimeError("NaiveBayesBaseline used before fit (or from_dict)")
        _require_columns(frame, self.columns, "NaiveBayesBaseline.predict_proba")
        z = np.full(len(frame), self.log_prior_[1] - self.log_prior_[0], dtype=np.float64)
        for name in self.columns:
            seen, ratio, missing_ratio = self._lookup[name]
            values = _as_text(frame[name])
            idx = seen.get_indexer(values)
            z += np.where(idx >= 0, ratio[np.maximum(idx, 0)] if len(ratio) else 0.0, 0.0)
            z[values.isna().to_numpy()] += missing_ratio
        return np.clip(z, -MAX_LOG_ODDS, MAX_LOG_ODDS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state: the frequency table (counts per column value and class), the
        class counts and ``alpha``. Missing is the JSON ``null`` value."""
        if not hasattr(self, "counts_"):
            raise RuntimeError("NaiveBayesBaseline.to_dict called before fit")
        return {
            "format": NB_FORMAT,
            "columns": list(self.columns),
            "alpha": self.alpha,
            "classes": [int(c) for c in self.classes_],
            "class_count": [int(c) for c in self.class_count_],
            "counts": {
                name: [[value, n0, n1] for value, (n0, n1) in column.items()]
                for name, column in self.counts_.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NaiveBayesBaseline:
        """Rebuild a fitted model from :meth:`to_dict` output; scores are identical."""
        if data.get("format") != NB_FORMAT:
            raise ValueError(
                f"not a naive Bayes baseline of format {NB_FORMAT!r}: got format "
                f"{data.get('format')!r}; re-fit and re-export the baseline"
            )
        model = cls(data["columns"], alpha=float(data["alpha"]))
        if list(data["classes"]) != [0, 1] or len(data["class_count"]) != 2:
            raise ValueError(f"classes must be [0, 1] with two counts; got {data['classes']}")
        if set(data["counts"]) != set(model.columns):
            raise ValueError(
                f"counts are given for {sorted(data['counts'])} but columns are "
                f"{model.columns}; the file is inconsistent"
            )
        model.classes_ = np.array([0, 1], dtype=np.int64)
        model.class_count_ = np.array(data["class_count"], dtype=np.int64)
        model.counts_ = {
            name: {
                (None if value is None else str(value)): (int(n0), int(n1))
                for value, n0, n1 in data["counts"][name]
            }
            for name in model.columns
        }
        model._derive()
        return model


# --------------------------------------------------------------------------------------
# Logistic regression
# --------------------------------------------------------------------------------------


def _as_float(X: pd.DataFrame) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = X.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _as_float_log1p(X: pd.DataFrame) -> npt.NDArray[np.float64]:
    # Clipping at 0 keeps an unexpected negative value finite instead of NaN / -inf.
    out: npt.NDArray[np.float64] = np.log1p(np.clip(_as_float(X), 0.0, None))
    return out


class _MedianImputer(TransformerMixin, BaseEstimator):
    """Median imputation plus a 0/1 missing indicator for every column that had missing
    values in fit: the semantics of ``SimpleImputer(strategy="median", add_indicator=True,
    keep_empty_features=True)`` (an all-missing column is filled with 0).

    Why not ``SimpleImputer``: its median goes through masked arrays, 10.8 s to fit on
    500k × 40 here against 0.8 s for ``np.nanmedian``.
    """

    def fit(self, X: npt.ArrayLike, y: object = None) -> Self:
        values = np.asarray(X, dtype=np.float64)
        missing = np.isnan(values)
        has_data = ~missing.all(axis=0)
        self.statistics_ = np.zeros(values.shape[1], dtype=np.float64)
        if has_data.any():
            self.statistics_[has_data] = np.nanmedian(values[:, has_data], axis=0)
        self.indicator_columns_ = np.flatnonzero(missing.any(axis=0))
        self.n_features_in_ = values.shape[1]
        return self

    def transform(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        values = np.array(X, dtype=np.float64, copy=True)
        missing = np.isnan(values)
        indicators = missing[:, self.indicator_columns_].astype(np.float64)
        values[missing] = self.statistics_[np.nonzero(missing)[1]]
        return np.hstack([values, indicators])

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> Any:
        names = (
            [f"x{i}" for i in range(self.n_features_in_)]
            if input_features is None
            else [str(n) for n in input_features]
        )
        flags = [f"missingindicator_{names[j]}" for j in self.indicator_columns_]
        return np.asarray([*names, *flags], dtype=object)


class _CategoryCodes(TransformerMixin, BaseEstimator):
    """Category values → integer codes of the levels seen in fit (missing is the level
    :data:`MISSING_LEVEL`; unseen values get -1, which the one-hot step then ignores).

    Why: ``OneHotEncoder`` counts and sorts object arrays in Python (≈ 8 s for 500k rows ×
    10 columns); on integer codes the same step takes ≈ 0.1 s. ``levels_[j][code]`` maps
    a code back to its text.
    """

    def fit(self, X: pd.DataFrame, y: object = None) -> Self:
        self.levels_ = [
            pd.Index(sorted(_as_text(X[name]).fillna(MISSING_LEVEL).unique()), dtype=object)
            for name in X.columns
        ]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> npt.NDArray[np.int64]:
        out = np.empty((len(X), len(self.levels_)), dtype=np.int64)
        for j, name in enumerate(X.columns):
            out[:, j] = self.levels_[j].get_indexer(_as_text(X[name]).fillna(MISSING_LEVEL))
        return out

    def get_feature_names_out(self, input_features: object = None) -> npt.NDArray[np.object_]:
        return self.feature_names_in_


def _numeric_steps(convert: Any) -> Pipeline:
    return Pipeline(
        [
            ("to_float", FunctionTransformer(convert, feature_names_out="one-to-one")),
            ("impute", _MedianImputer()),
            ("scale", StandardScaler()),
        ]
    )


def skewed_nonnegative_columns(
    frame: pd.DataFrame, numeric: Sequence[str], *, min_skew: float = LOG1P_MIN_SKEW
) -> list[str]:
    """Numeric columns that are non-negative and right-skewed (sample skewness above
    ``min_skew``) in ``frame``: the heavy-tailed counts, budgets and amounts that
    :class:`LogisticBaseline` puts on a ``log1p`` scale by default."""
    chosen = []
    for name in numeric:
        values = pd.Series(_as_float(frame[[name]])[:, 0])
        if values.notna().sum() < 3 or values.min() < 0:
            continue
        skew = values.skew()
        if math.isfinite(skew) and skew > min_skew:
            chosen.append(name)
    return chosen


class LogisticBaseline:
    """L2-regularised logistic regression on one-hot categoricals and scaled numerics.

    Preprocessing, all fitted on the training rows only:

    - categorical columns: values as strings, missing as its own level
      (:data:`MISSING_LEVEL`); one-hot with levels seen fewer than ``min_frequency``
      times pooled into one "infrequent" column; levels unseen in training encode as all
      zeros (``handle_unknown="ignore"``), i.e. they add nothing to the logit.
    - numeric columns: ``log1p`` for ``log1p_columns`` (see below), then median
      imputation plus a missing-indicator column for every column that had missing values
      in training, then standardisation.
    - ``LogisticRegression(C, max_iter, solver="lbfgs")``.

    ``log1p_columns``: by default (``None``) the numeric columns that are non-negative and
    right-skewed in the training frame (:func:`skewed_nonnegative_columns`): touch counts,
    budgets. A linear logit in a raw heavy-tailed count lets a few extreme leads set the
    slope and saturates them; ``log1p`` gives the diminishing returns a count usually has
    and is a monotone no-op for ranking within the column. Evenly spread columns (days
    since created, rates) stay linear. Pass a list to choose, ``()`` to turn it off. At
    scoring, negative values in those columns are clipped to 0. The choice made is kept in
    ``log1p_columns_``.

    Fitted state: ``pipeline_`` (the scikit-learn pipeline), ``log1p_columns_``,
    ``classes_``.
    """

    def __init__(
        self,
        numeric: Sequence[str],
        categorical: Sequence[str],
        *,
        C: float = 1.0,
        max_iter: int = 2000,
        min_frequency: int | float = 20,
        log1p_columns: Sequence[str] | None = None,
    ) -> None:
        names = [*numeric, *categorical]
        if not names:
            raise ValueError("LogisticBaseline needs at least one numeric or categorical column")
        if len(set(names)) != len(names):
            raise ValueError(f"LogisticBaseline columns repeat a name: {names}")
        if log1p_columns is not None and not set(log1p_columns) <= set(numeric):
            raise ValueError(
                f"log1p_columns {sorted(set(log1p_columns) - set(numeric))} are not among "
                "the numeric columns"
            )
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.C = C
        self.max_iter = max_iter
        self.min_frequency = min_frequency
        self.log1p_columns = None if log1p_columns is None else list(log1p_columns)

    def _build(self, log_columns: list[str]) -> Pipeline:
        linear = [c for c in self.numeric if c not in set(log_columns)]
        parts: list[tuple[str, Any, list[str]]] = []
        if log_columns:
            parts.append(("log1p_numeric", _numeric_steps(_as_float_log1p), log_columns))
        if linear:
            parts.append(("numeric", _numeric_steps(_as_float), linear))
        if self.categorical:
            categorical = Pipeline(
                [
                    ("to_codes", _CategoryCodes()),
                    (
                        "one_hot",
                        OneHotEncoder(
                            handle_unknown="ignore",
                            min_frequency=self.min_frequency,
                        ),
                    ),
                ]
            )
            parts.append(("categorical", categorical, self.categorical))
        return Pipeline(
            [
                ("features", ColumnTransformer(parts, remainder="drop")),
                (
                    "logistic",
                    LogisticRegression(C=self.C, max_iter=self.max_iter, solver="lbfgs"),
                ),
            ]
        )

    def fit(self, frame: pd.DataFrame, y: npt.ArrayLike) -> Self:
        """Fit preprocessing and the regression on ``frame`` (holding :attr:`numeric` and
        :attr:`categorical`) and 0/1 ``y`` by position. Returns ``self``. Does not mutate
        inputs."""
        _require_columns(frame, [*self.numeric, *self.categorical], "LogisticBaseline.fit")
        labels = _binary_target(y, len(frame))
        if self.log1p_columns is None:
            self.log1p_columns_ = skewed_nonnegative_columns(frame, self.numeric)
        else:
            self.log1p_columns_ = list(self.log1p_columns)
        columns = [*self.numeric, *self.categorical]
        self.pipeline_ = self._build(self.log1p_columns_).fit(frame[columns], labels)
        self.classes_ = self.pipeline_.classes_
        return self

    def predict_proba(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Probability of conversion per row of ``frame`` (1-D float64). Missing numerics
        take the training median (and raise their indicator); unseen categories add
        nothing. Does not mutate ``frame``."""
        if not hasattr(self, "pipeline_"):
            raise RuntimeError("LogisticBaseline used before fit")
        _require_columns(
            frame, [*self.numeric, *self.categorical], "LogisticBaseline.predict_proba"
        )
        proba = self.pipeline_.predict_proba(frame[[*self.numeric, *self.categorical]])
        out: npt.NDArray[np.float64] = np.asarray(proba[:, 1], dtype=np.float64)
        return out
