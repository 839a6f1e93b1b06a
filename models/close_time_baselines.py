"""Baselines for the deal close-time model, on the weekly competing-risks grid.

Every baseline returns, per open-deal snapshot, ``(cif_won, cif_lost)`` of shape ``(n, K)``:
P(won by the end of week k) and P(lost by the end of week k), ``k = 0 .. K-1``, with the
conventions of :mod:`models.competing_risks` (durations in days from the snapshot's
``as_of``; events :data:`~models.competing_risks.CENSORED` / ``WON`` / ``LOST``; week ``k``
covers days ``[7k, 7k + 7)``), so :func:`~models.competing_risks.curve_at` and
:func:`~models.competing_risks.won_time_quantiles` apply to them unchanged.

- :class:`StageAalenJohansen` — the Aalen–Johansen estimator (the competing-risks
  Kaplan–Meier) per current stage: the "stage-weighted view" of a CRM, reported as
  ``km_stage``.
- :class:`CauseSpecificCox` — one Cox proportional-hazards model per cause (lifelines) on
  the same features as the model.
- :class:`RepDateBaseline` — the stage's win probability, timed by the rep's own expected
  close date corrected by the historical error of such dates.

Leakage: each learns only from the rows it is fitted on; fit on the training snapshots and
score the test snapshots, as the close-time model is. None is pickled or persisted.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Final, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError, ConvergenceWarning

from models.competing_risks import (
    CENSORED,
    LOST,
    WEEK_DAYS,
    WON,
    FloatArray,
    cumulative_incidence,
)

#: Categorical levels seen fewer times than this in training share the level ``"other"``.
MIN_LEVEL_COUNT: Final = 50
#: The level a missing categorical value takes before the frequency cut.
MISSING_LEVEL: Final = "(missing)"
OTHER_LEVEL: Final = "other"
#: Linear predictors are clipped here before ``exp`` so a wild row cannot overflow.
MAX_LINEAR_PREDICTOR: Final = 50.0
#: The penalizer of the one retry after a lifelines convergence failure is this many times
#: the configured one (at least :data:`MIN_RETRY_PENALIZER`).
RETRY_PENALIZER_FACTOR: Final = 10.0
MIN_RETRY_PENALIZER: Final = 0.1


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------


def _check_horizon(horizon_weeks: int) -> int:
    if isinstance(horizon_weeks, bool) or not isinstance(horizon_weeks, int | np.integer):
        raise ValueError(f"horizon_weeks must be an integer >= 1; got {horizon_weeks!r}")
    if horizon_weeks < 1:
        raise ValueError(f"horizon_weeks must be >= 1; got {horizon_weeks}")
    return int(horizon_weeks)


def _outcomes(
    time: npt.ArrayLike, event: npt.ArrayLike, who: str
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """``time`` (days, finite, >= 0) and ``event`` (0/1/2) as 1-D arrays of one length."""
    t = np.asarray(time)
    e = np.asarray(event)
    if t.ndim != 1 or e.ndim != 1 or len(t) != len(e):
        raise ValueError(
            f"{who}: time and event must be 1-D of the same length; got shapes "
            f"{t.shape} and {e.shape}"
        )
    if len(t) == 0:
        raise ValueError(f"{who}: no training rows")
    if t.dtype == object or t.dtype.kind not in "biuf":
        raise ValueError(f"{who}: time must be numeric days; got dtype {t.dtype}")
    t = t.astype(np.float64)
    bad_t = ~np.isfinite(t) | (t < 0)
    if bad_t.any():
        i = int(np.flatnonzero(bad_t)[0])
        raise ValueError(
            f"{who}: time must be finite days >= 0; row {i} holds {t[i].item()!r} "
            f"({int(bad_t.sum())} bad value(s))"
        )
    if e.dtype == object or e.dtype.kind not in "biuf":
        raise ValueError(f"{who}: event must hold the codes 0/1/2; got dtype {e.dtype}")
    bad_e = ~np.isin(e, (CENSORED, WON, LOST))
    if bad_e.any():
        i = int(np.flatnonzero(bad_e)[0])
        raise ValueError(
            f"{who}: event must be {CENSORED} (open), {WON} (won) or {LOST} (lost); row {i} "
            f"holds {e[i].item()!r} ({int(bad_e.sum())} bad value(s))"
        )
    return t, e.astype(np.int64)


def _stages(stage: npt.ArrayLike | Sequence[object], n: int | None, who: str) -> list[str | None]:
    """Stage labels as text, missing (``None``/``NaN``/``pd.NA``) as ``None``."""
    raw = np.asarray(stage, dtype=object)
    if raw.ndim != 1:
        raise ValueError(f"{who}: stage must be 1-D; got shape {raw.shape}")
    if n is not None and len(raw) != n:
        raise ValueError(f"{who}: stage has {len(raw)} values for {n} rows; align them")
    values = pd.Series(raw, dtype=object)
    missing = values.isna().to_numpy()
    return [None if m else str(v) for v, m in zip(raw, missing, strict=True)]


def _days(values: npt.ArrayLike, n: int | None, who: str) -> FloatArray:
    """Days (may be negative or missing) as float64 with NaN for missing."""
    raw = np.asarray(values, dtype=object)
    if raw.ndim != 1:
        raise ValueError(f"{who}: days_to_expected must be 1-D; got shape {raw.shape}")
    if n is not None and len(raw) != n:
        raise ValueError(f"{who}: days_to_expected has {len(raw)} values for {n} rows")
    try:
        numeric = pd.to_numeric(pd.Series(raw, dtype=object), errors="raise")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{who}: days_to_expected must be numbers of days or missing") from exc
    out: FloatArray = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(out), out, np.nan)


def _not_fitted(who: str) -> ValueError:
    return ValueError(f"{who} used before fit: call fit on the training snapshots first")


# --------------------------------------------------------------------------------------
# Aalen–Johansen per stage
# --------------------------------------------------------------------------------------


def aalen_johansen(
    time: FloatArray, event: npt.NDArray[np.int64], horizon_weeks: int
) -> tuple[FloatArray, FloatArray]:
    """The Aalen–Johansen won and lost incidence ``(K,)`` each, on the weekly grid.

    Weekly hazards: events of each cause in week ``k`` (``floor(time / 7) == k``) over the
    rows at risk at the start of week ``k`` (``time >= 7k``). A row censored during week
    ``k`` counts as at risk for the whole of that week — the Kaplan–Meier convention
    applied to weeks; it biases each weekly hazard down, relatively, by about half the share
    of rows censored within that week. Weeks with nobody at risk have zero hazard.
    """
    week = np.floor(time / WEEK_DAYS).astype(np.int64)
    in_grid = week < horizon_weeks
    won = np.bincount(week[in_grid & (event == WON)], minlength=horizon_weeks)
    lost = np.bincount(week[in_grid & (event == LOST)], minlength=horizon_weeks)
    leaving = np.bincount(np.minimum(week, horizon_weeks), minlength=horizon_weeks + 1)
    at_risk = len(time) - np.concatenate([[0], np.cumsum(leaving)[: horizon_weeks - 1]])
    denominator = np.maximum(at_risk, 1).astype(np.float64)
    cif_won, cif_lost = cumulative_incidence(
        (won / denominator)[None, :], (lost / denominator)[None, :]
    )
    return cif_won[0], cif_lost[0]


class StageAalenJohansen:
    """Won / lost cumulative incidence per current open stage (Aalen–Johansen).

    One curve pair per stage with at least ``min_rows`` training rows, and a pooled pair
    from all training rows, used for rows whose stage is rarer, missing or unseen in
    training. See :func:`aalen_johansen` for the estimator and its handling of rows
    censored within a week.

    Fitted state: ``curves_`` (stage → ``(cif_won, cif_lost)``, each ``(K,)``),
    ``pooled_`` (the same from all rows), ``counts_`` (training rows per stage, ``None``
    keying missing).
    """

    def __init__(self, horizon_weeks: int = 26, min_rows: int = 50) -> None:
        self.horizon_weeks = _check_horizon(horizon_weeks)
        if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
            raise ValueError(f"min_rows must be an integer >= 1; got {min_rows!r}")
        self.min_rows = min_rows

    def fit(
        self, time: npt.ArrayLike, event: npt.ArrayLike, stage: npt.ArrayLike | Sequence[object]
    ) -> Self:
        """Estimate the curves from training snapshots: ``time`` in days from ``as_of``
        (to the close, or to the end of observation when still open), ``event`` 0/1/2,
        ``stage`` the open stage at ``as_of`` (missing allowed). Returns ``self``."""
        t, e = _outcomes(time, event, "StageAalenJohansen.fit")
        labels = np.asarray(_stages(stage, len(t), "StageAalenJohansen.fit"), dtype=object)
        self.pooled_ = aalen_johansen(t, e, self.horizon_weeks)
        self.counts_: dict[str | None, int] = {}
        self.curves_: dict[str, tuple[FloatArray, FloatArray]] = {}
        for level in dict.fromkeys(labels.tolist()):
            rows = labels == level if level is not None else pd.isna(labels)
            self.counts_[level] = int(rows.sum())
            if level is not None and rows.sum() >= self.min_rows:
                self.curves_[level] = aalen_johansen(t[rows], e[rows], self.horizon_weeks)
        return self

    def predict_cif(self, stage: npt.ArrayLike | Sequence[object]) -> tuple[FloatArray, FloatArray]:
        """``(cif_won, cif_lost)`` ``(n, K)`` for each row's current stage (the pooled
        curves where the stage had fewer than ``min_rows`` training rows, is missing or
        was not seen in training)."""
        if not hasattr(self, "pooled_"):
            raise _not_fitted("StageAalenJohansen")
        labels = _stages(stage, None, "StageAalenJohansen.predict_cif")
        names = list(self.curves_)
        # missing (None) never matches a fitted stage name
        index = pd.Index(names, dtype=object).get_indexer(pd.Index(labels, dtype=object))
        won = np.vstack([*(self.curves_[s][0] for s in names), self.pooled_[0]])
        lost = np.vstack([*(self.curves_[s][1] for s in names), self.pooled_[1]])
        index = np.where(index < 0, len(names), index)
        return won[index].copy(), lost[index].copy()


# --------------------------------------------------------------------------------------
# Cause-specific Cox
# --------------------------------------------------------------------------------------


def _as_text(values: pd.Series) -> pd.Series:
    """Category values as text, missing as :data:`MISSING_LEVEL`."""
    return values.astype("str").where(values.notna(), MISSING_LEVEL)


class _CoxDesign:
    """Features → a standardised float design matrix, fitted on training rows only.

    - Numeric columns (numeric or boolean dtype): non-finite values count as missing;
      median imputation plus a 0/1 missing indicator for each column that had missing
      values in training.
    - Every other column is categorical: values as text (missing is the level
      :data:`MISSING_LEVEL`); levels seen fewer than :data:`MIN_LEVEL_COUNT` times in
      training, and levels unseen there, become :data:`OTHER_LEVEL`; one-hot without the
      most frequent level (Cox has no intercept, so a full set would be collinear). When
      training had no rare level, an unseen level encodes like that reference level.
    - Every design column is standardised with its training mean and standard deviation;
      columns constant in training are dropped.

    Fitted state (plain attributes): ``numeric_``, ``categorical_``, ``medians_``,
    ``indicator_columns_``, ``frequent_levels_`` and ``levels_`` (column → levels kept,
    and its one-hot levels), ``keep_``, ``means_``, ``scales_``, ``names_``.
    """

    def fit(self, frame: pd.DataFrame) -> Self:
        self.numeric_ = [
            str(c)
            for c in frame.columns
            if pd.api.types.is_numeric_dtype(frame[c])
            and not isinstance(frame[c].dtype, pd.CategoricalDtype)
        ]
        numeric = set(self.numeric_)
        self.categorical_ = [str(c) for c in frame.columns if str(c) not in numeric]
        values = self._numeric(frame)
        missing = np.isnan(values)
        self.medians_ = np.zeros(values.shape[1], dtype=np.float64)
        has_data = ~missing.all(axis=0)
        if has_data.any():
            self.medians_[has_data] = np.nanmedian(values[:, has_data], axis=0)
        self.indicator_columns_ = [self.numeric_[j] for j in np.flatnonzero(missing.any(axis=0))]
        self.frequent_levels_: dict[str, list[str]] = {}
        self.levels_: dict[str, list[str]] = {}
        for name in self.categorical_:
            counts = _as_text(frame[name]).value_counts()
            table = {str(k): int(v) for k, v in counts.items() if v >= MIN_LEVEL_COUNT}
            self.frequent_levels_[name] = sorted(table)
            rare = int(counts[counts < MIN_LEVEL_COUNT].sum())
            if rare:
                table[OTHER_LEVEL] = table.get(OTHER_LEVEL, 0) + rare
            reference = max(sorted(table), key=table.__getitem__)
            self.levels_[name] = sorted(level for level in table if level != reference)
        raw, names = self._raw(frame)
        means, scales = raw.mean(axis=0), raw.std(axis=0)
        self.keep_ = scales > 1e-9 * np.maximum(1.0, np.abs(means))
        self.means_, self.scales_ = means[self.keep_], scales[self.keep_]
        self.names_ = [n for n, k in zip(names, self.keep_, strict=True) if k]
        return self

    def _numeric(self, frame: pd.DataFrame) -> FloatArray:
        if not self.numeric_:
            return np.zeros((len(frame), 0), dtype=np.float64)
        out: FloatArray = frame[self.numeric_].to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isfinite(out), out, np.nan)

    def _raw(self, frame: pd.DataFrame) -> tuple[FloatArray, list[str]]:
        absent = [c for c in [*self.numeric_, *self.categorical_] if c not in frame.columns]
        if absent:
            raise ValueError(
                f"CauseSpecificCox: the feature frame lacks column(s) {absent} it was "
                "fitted with; pass the same feature columns"
            )
        values = self._numeric(frame)
        missing = np.isnan(values)
        position = {c: j for j, c in enumerate(self.numeric_)}
        flags = missing[:, [position[c] for c in self.indicator_columns_]].astype(np.float64)
        blocks: list[FloatArray] = [np.where(missing, self.medians_[None, :], values), flags]
        names = [*self.numeric_, *(f"{c}__missing" for c in self.indicator_columns_)]
        for name, levels in self.levels_.items():
            text = _as_text(frame[name])
            text = text.where(text.isin(self.frequent_levels_[name]), OTHER_LEVEL)
            codes = text.to_numpy(dtype=object)
            one_hot = np.zeros((len(frame), len(levels)), dtype=np.float64)
            for j, level in enumerate(levels):
                one_hot[:, j] = codes == level
            blocks.append(one_hot)
            names.extend(f"{name}={level}" for level in levels)
        return np.hstack(blocks), names

    def transform(self, frame: pd.DataFrame) -> FloatArray:
        raw, _ = self._raw(frame)
        out: FloatArray = (raw[:, self.keep_] - self.means_) / self.scales_
        return out


class CauseSpecificCox:
    """Cause-specific Cox models (lifelines ``CoxPHFitter``) combined into competing-risks
    incidence curves.

    Two proportional-hazards models on the same features: won (lost and open rows
    censored) and lost (won and open rows censored). Features are preprocessed inside
    (fitted on the training rows only, see :class:`_CoxDesign`): numeric columns median
    imputed with a missing indicator per column that had missing values, categorical
    columns (any non-numeric dtype) one-hot over levels seen at least
    :data:`MIN_LEVEL_COUNT` times, all standardised, constant columns dropped.

    - Follow-up is censored at the horizon (``7 K`` days) before fitting: the
      proportional-hazards fit then concerns only the window that is predicted.
    - Speed: at most ``max_rows`` training rows are used (a uniform subsample, seeded by
      ``seed``), preprocessing included; the subsample is recorded in :attr:`notes`.
    - Convergence: if lifelines fails to converge for a cause, it is refitted once with
      ``max(10 × penalizer, 0.1)``, recorded in :attr:`notes`; a second hard failure
      raises ``ValueError``.
    - Curves: with ``H_c`` the baseline cumulative hazard (Breslow) just before each week
      end and ``r_c`` a row's partial hazard, the weekly cause-specific hazards are
      ``h_c[k] = 1 − exp(−r_c (H_c(7(k+1)) − H_c(7k)))``, chained by
      :func:`~models.competing_risks.cumulative_incidence`.

    Fitted state: ``design_`` (the preprocessing), ``coefficients_`` (cause → Series of
    coefficients per design column, standardised scale), ``cumulative_hazard_`` (cause →
    baseline cumulative hazard at the week ends, ``(K,)``), ``penalizers_`` (cause → the
    penalizer finally used), ``n_fit_rows_``; :attr:`notes` (``list[str]``).
    """

    def __init__(
        self,
        horizon_weeks: int = 26,
        penalizer: float = 0.01,
        max_rows: int = 60_000,
        seed: int = 7,
    ) -> None:
        self.horizon_weeks = _check_horizon(horizon_weeks)
        if not (math.isfinite(penalizer) and penalizer >= 0):
            raise ValueError(f"penalizer must be a finite number >= 0; got {penalizer!r}")
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 2:
            raise ValueError(f"max_rows must be an integer >= 2; got {max_rows!r}")
        self.penalizer = float(penalizer)
        self.max_rows = max_rows
        self.seed = seed
        self.notes: list[str] = []

    def fit(self, features: pd.DataFrame, time: npt.ArrayLike, event: npt.ArrayLike) -> Self:
        """Fit preprocessing and both Cox models on training snapshots: ``features`` one
        row per snapshot (by position), ``time`` days from ``as_of``, ``event`` 0/1/2.
        Returns ``self``. Does not mutate inputs."""
        who = "CauseSpecificCox.fit"
        if not isinstance(features, pd.DataFrame):
            raise ValueError(f"{who}: features must be a pandas DataFrame")
        t, e = _outcomes(time, event, who)
        if len(features) != len(t):
            raise ValueError(f"{who}: features has {len(features)} rows for {len(t)} outcomes")
        self.notes = []
        rows = np.arange(len(t))
        if len(t) > self.max_rows:
            rng = np.random.default_rng(self.seed)
            rows = np.sort(rng.choice(len(t), size=self.max_rows, replace=False))
            self.notes.append(
                f"fitted on a seeded subsample of {self.max_rows} of {len(t)} training rows"
            )
        self.n_fit_rows_ = len(rows)
        frame = features.iloc[rows]
        design = _CoxDesign().fit(frame)
        if not design.names_:
            raise ValueError(f"{who}: every feature column is constant on the training rows")
        X = design.transform(frame)
        horizon_days = WEEK_DAYS * self.horizon_weeks
        t_fit = np.minimum(t[rows], horizon_days)
        e_fit = np.where(t[rows] >= horizon_days, CENSORED, e[rows])
        data = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
        data["_time"] = t_fit
        grid = WEEK_DAYS * np.arange(1, self.horizon_weeks + 1)
        offsets = X.mean(axis=0)  # lifelines centres covariates on the fitting rows' mean
        self.coefficients_: dict[str, pd.Series] = {}
        self.cumulative_hazard_: dict[str, FloatArray] = {}
        self.penalizers_: dict[str, float] = {}
        self._offsets: dict[str, float] = {}
        for cause, name in ((WON, "won"), (LOST, "lost")):
            if not (e_fit == cause).any():
                if cause == WON:
                    raise ValueError(
                        f"{who}: no won event within the {self.horizon_weeks}-week horizon "
                        "among the training rows; widen the training window"
                    )
                # a CRM that never records losses (e.g. Olist): no lost hazard to fit
                self.notes.append("no lost event in the training rows: lost hazard is zero")
                self.coefficients_[name] = pd.Series(0.0, index=design.names_, name=name)
                self._offsets[name] = 0.0
                self.cumulative_hazard_[name] = np.zeros(self.horizon_weeks)
                continue
            data["_event"] = (e_fit == cause).astype(np.int64)
            fitter = self._fit_cause(data, name)
            beta = fitter.params_.to_numpy(dtype=np.float64)
            self.coefficients_[name] = pd.Series(beta, index=design.names_, name=name)
            self._offsets[name] = float(offsets @ beta)
            baseline = fitter.baseline_cumulative_hazard_
            times = baseline.index.to_numpy(dtype=np.float64)
            values = baseline.iloc[:, 0].to_numpy(dtype=np.float64)
            # strictly before each week end: week k covers days [7k, 7k + 7)
            idx = np.searchsorted(times, grid, side="left") - 1
            self.cumulative_hazard_[name] = np.where(idx >= 0, values[np.maximum(idx, 0)], 0.0)
        self.design_ = design
        return self

    def _fit_cause(self, data: pd.DataFrame, name: str) -> CoxPHFitter:
        """One cause's fit, retried once with a larger penalizer when it does not converge."""
        penalizer = self.penalizer
        for attempt in (1, 2):
            fitter = CoxPHFitter(penalizer=penalizer)
            caught: list[warnings.WarningMessage] = []
            reason = ""
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    fitter.fit(data, duration_col="_time", event_col="_event")
                failed = [
                    w
                    for w in caught
                    if issubclass(w.category, ConvergenceWarning)
                    and "failed to converge" in str(w.message)
                ]
                if failed:
                    reason = "Newton-Raphson failed to converge"
            except ConvergenceError as exc:
                if attempt == 2:
                    raise ValueError(
                        f"CauseSpecificCox: the {name} model did not converge even with "
                        f"penalizer {penalizer:g} ({exc}); check the features for "
                        "separation or collinearity"
                    ) from exc
                reason = f"ConvergenceError: {str(exc).splitlines()[0]}"
            if not reason:
                # lifelines' data warnings (collinearity, low variance) matter to the
                # caller; its pandas deprecation noise does not
                for w in caught:
                    if issubclass(w.category, ConvergenceWarning):
                        warnings.warn(w.message, w.category, stacklevel=3)
                self.penalizers_[name] = penalizer
                return fitter
            if attempt == 2:
                self.notes.append(
                    f"{name}: still not converged with penalizer {penalizer:g}; its last "
                    "estimate is used"
                )
                self.penalizers_[name] = penalizer
                return fitter
            retry = max(penalizer * RETRY_PENALIZER_FACTOR, MIN_RETRY_PENALIZER)
            self.notes.append(
                f"{name}: lifelines did not converge with penalizer {penalizer:g} ({reason}); "
                f"refitted with penalizer {retry:g}"
            )
            penalizer = retry
        raise AssertionError("unreachable")  # pragma: no cover

    def predict_cif(self, features: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        """``(cif_won, cif_lost)`` ``(n, K)`` per row of ``features`` (the columns it was
        fitted with; missing numerics take the training median, unseen categories count
        as ``"other"``). Does not mutate ``features``."""
        if not hasattr(self, "design_"):
            raise _not_fitted("CauseSpecificCox")
        if not isinstance(features, pd.DataFrame):
            raise ValueError("CauseSpecificCox.predict_cif: features must be a pandas DataFrame")
        X = self.design_.transform(features)
        hazards: dict[str, FloatArray] = {}
        for name, beta in self.coefficients_.items():
            linear = X @ beta.to_numpy() - self._offsets[name]
            relative = np.exp(np.clip(linear, -MAX_LINEAR_PREDICTOR, MAX_LINEAR_PREDICTOR))
            step = np.diff(self.cumulative_hazard_[name], prepend=0.0)
            hazards[name] = -np.expm1(-relative[:, None] * step[None, :])
        return cumulative_incidence(hazards["won"], hazards["lost"])


# --------------------------------------------------------------------------------------
# The rep's expected close date
# --------------------------------------------------------------------------------------


class RepDateBaseline:
    """ "The rep's own expected close date": the stage's win probability, timed by the
    rep's date corrected by the historical error of such dates.

    - P(won within the horizon) per row: the won incidence at the horizon of its stage
      (:class:`StageAalenJohansen`, pooled for rare / missing / unseen stages).
    - Timing: the errors ``e = time − max(days_to_expected, 0)`` (days) over training rows
      won within the horizon that had a rep date. For a row with a date ``d``,
      ``cif_won[:, k] = p_stage × P(e < 7(k + 1) − max(d, 0))`` (strict, matching the
      half-open weeks). An overdue date (``d < 0``) counts as "today".
    - Rows without a date (NaN) take the stage curves unchanged.
    - ``cif_lost`` is the stage's lost curve scaled per row (by at most 1) so that
      ``cif_won + cif_lost <= 1`` at every week; since ``cif_won <= p_stage`` the scale
      is 1 in practice and the lost curve is the stage's.

    Caveat: the errors are measured on deals won within the horizon, so the timing is
    that of a deal that is won; the probability of a win comes from the stage alone.

    Fitted state: ``stage_model_``, ``errors_`` (sorted, days), ``median_error_``.
    """

    def __init__(self, horizon_weeks: int = 26, min_rows: int = 50) -> None:
        self.horizon_weeks = _check_horizon(horizon_weeks)
        self.min_rows = min_rows
        StageAalenJohansen(self.horizon_weeks, min_rows)  # validates min_rows

    def fit(
        self,
        time: npt.ArrayLike,
        event: npt.ArrayLike,
        stage: npt.ArrayLike | Sequence[object],
        days_to_expected: npt.ArrayLike,
    ) -> Self:
        """Fit the stage curves and the error distribution of rep dates on training
        snapshots: ``time`` days from ``as_of``, ``event`` 0/1/2, ``stage`` the open stage
        at ``as_of``, ``days_to_expected`` days from ``as_of`` to the rep's expected close
        date (negative when overdue, NaN when unset). Returns ``self``."""
        who = "RepDateBaseline.fit"
        t, e = _outcomes(time, event, who)
        d = _days(days_to_expected, len(t), who)
        stage_model = StageAalenJohansen(self.horizon_weeks, self.min_rows).fit(t, e, stage)
        rows = (e == WON) & (t < WEEK_DAYS * self.horizon_weeks) & ~np.isnan(d)
        if not rows.any():
            raise ValueError(
                f"{who}: no training row was won within the {self.horizon_weeks}-week "
                "horizon with a rep expected close date; the rep-date error is undefined"
            )
        self.stage_model_ = stage_model
        self.errors_ = np.sort(t[rows] - np.maximum(d[rows], 0.0))
        self.median_error_ = float(np.median(self.errors_))
        return self

    def predict_cif(
        self, stage: npt.ArrayLike | Sequence[object], days_to_expected: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        """``(cif_won, cif_lost)`` ``(n, K)`` per row from its current ``stage`` and
        ``days_to_expected`` (days from ``as_of`` to the rep's date; NaN → stage curve)."""
        if not hasattr(self, "stage_model_"):
            raise _not_fitted("RepDateBaseline")
        stage_won, stage_lost = self.stage_model_.predict_cif(stage)
        d = _days(days_to_expected, len(stage_won), "RepDateBaseline.predict_cif")
        has_date = ~np.isnan(d)
        grid = WEEK_DAYS * np.arange(1, self.horizon_weeks + 1)
        lag = grid[None, :] - np.maximum(np.nan_to_num(d, nan=0.0), 0.0)[:, None]
        share = np.searchsorted(self.errors_, lag, side="left") / len(self.errors_)
        won = np.where(has_date[:, None], stage_won[:, -1:] * share, stage_won)
        room = np.clip(1.0 - won, 0.0, 1.0)
        ratio = np.where(stage_lost > 1e-12, room / np.maximum(stage_lost, 1e-12), np.inf)
        scale = np.minimum(1.0, ratio.min(axis=1))
        return won, stage_lost * scale[:, None]

    def median_won_days(self, days_to_expected: npt.ArrayLike) -> FloatArray:
        """The rep's date corrected for its typical bias: ``max(days_to_expected, 0) +
        median(e)`` in days from ``as_of``; NaN where ``days_to_expected`` is NaN."""
        if not hasattr(self, "stage_model_"):
            raise _not_fitted("RepDateBaseline")
        d = _days(days_to_expected, None, "RepDateBaseline.median_won_days")
        out: FloatArray = np.maximum(d, 0.0) + self.median_error_
        return out


__all__ = [
    "CauseSpecificCox",
    "RepDateBaseline",
    "StageAalenJohansen",
    "aalen_johansen",
]
