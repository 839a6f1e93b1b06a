"""Probability calibration: isotonic or Platt, chosen on validation data, stored as JSON.

A raw score ``r`` in [0, 1] (a LightGBM probability, a rule score) is mapped to a
calibrated probability by one of:

* **Isotonic** — the non-decreasing step function that maximises the likelihood of the
  validation labels (pool-adjacent-violators), stored as its knots (x, y) and applied by
  linear interpolation between knots, constant beyond the ends. Fits any monotone
  distortion; needs more rows, and is piecewise flat (ties scores within a step).
* **Platt** — ``sigmoid(a · logit(r) + b)``: a logistic regression on the logit of the raw
  score, two numbers. Exact when the miscalibration is a logistic distortion
  (over/under-confidence, a shifted base rate); cannot bend otherwise. ``a`` is
  constrained to be ≥ 0 so calibration never reverses the ranking.

:func:`fit_calibrator` fits both and keeps the one with the lower *cross-fitted* log loss
on the validation rows (each row scored by calibrators fitted on the other folds, then
the winner refitted on all rows). Comparing in-sample log losses would favour isotonic,
which always fits its own rows at least as well as Platt does.

Every calibrated probability is clipped to [P_MIN, P_MAX] = [1e-6, 1 − 1e-6].

**Leakage caveat.** Fit calibrators on validation rows that the model was not trained on
(and, for time-ordered data, that come after the training rows). Calibrating on training
rows learns the model's overconfidence on data it has memorised, not how it behaves on new
leads, and the calibrated probabilities come out too extreme. Evaluate the calibrated
model on a third, held-out part.

Serialisation is JSON only (:meth:`Calibrator.to_dict` / :meth:`Calibrator.from_dict`),
never pickle.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import numpy as np
import numpy.typing as npt

from models.metrics import log_loss

FloatArray = npt.NDArray[np.float64]
Method = Literal["isotonic", "platt"]

P_MIN: Final = 1e-6
P_MAX: Final = 1.0 - 1e-6
#: Raw scores are clipped to [LOGIT_EPS, 1 − LOGIT_EPS] before the logit (Platt).
LOGIT_EPS: Final = 1e-12
METHODS: Final[tuple[Method, ...]] = ("isotonic", "platt")


def logit(p: npt.ArrayLike, eps: float = LOGIT_EPS) -> FloatArray:
    """log(p / (1 − p)) with p clipped to [eps, 1 − eps]."""
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.log(q) - np.log1p(-q)


def sigmoid(z: npt.ArrayLike) -> FloatArray:
    """1 / (1 + exp(−z)), overflow-free."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _as_probabilities(raw_p: npt.ArrayLike, what: str = "raw scores") -> FloatArray:
    r = np.asarray(raw_p, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array; got shape {r.shape}")
    bad = ~np.isfinite(r) | (r < 0.0) | (r > 1.0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{what} must be finite and in [0, 1]; position {i} holds {float(r[i])!r} "
            f"({int(bad.sum())} bad value(s))"
        )
    return r


def _as_labels(y: npt.ArrayLike, n: int) -> FloatArray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"labels must be a 1-D array of length {n}; got shape {arr.shape}")
    labels = arr.astype(np.float64)
    bad = (labels != 0.0) & (labels != 1.0)
    if bad.any():
        i = int(np.argmax(bad))
        value = arr[i].item() if isinstance(arr[i], np.generic) else arr[i]
        raise ValueError(f"labels must be 0/1 or booleans; position {i} holds {value!r}")
    return labels


# --- the calibrators --------------------------------------------------------------------


class Calibrator(ABC):
    """A fitted, monotone map from raw score to calibrated probability."""

    method: ClassVar[Method]

    @abstractmethod
    def _transform(self, raw: FloatArray) -> FloatArray: ...

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters, with ``"method"``; inverse of :meth:`from_dict`."""

    def predict(self, raw_p: npt.ArrayLike) -> FloatArray:
        """Calibrated probabilities of raw scores in [0, 1] (1-D, vectorised), clipped to
        [P_MIN, P_MAX]. Non-decreasing in the raw score."""
        raw = _as_probabilities(raw_p)
        return np.clip(self._transform(raw), P_MIN, P_MAX)

    @staticmethod
    def from_dict(payload: Mapping[str, Any]) -> Calibrator:
        """Rebuild a calibrator from :meth:`to_dict` output, validating it: unknown or
        missing keys, non-finite numbers, decreasing knots or a negative Platt slope are
        ``ValueError``s that say which key is wrong."""
        if not isinstance(payload, Mapping):
            raise ValueError(f"calibrator must be a JSON object; got {type(payload).__name__}")
        method = payload.get("method")
        if method == "isotonic":
            return IsotonicCalibrator._from_dict(payload)
        if method == "platt":
            return PlattCalibrator._from_dict(payload)
        raise ValueError(f"calibrator 'method' must be 'isotonic' or 'platt'; got {method!r}")


def _check_keys(payload: Mapping[str, Any], expected: set[str]) -> None:
    keys = set(payload)
    if keys != expected:
        missing, extra = sorted(expected - keys), sorted(keys - expected)
        raise ValueError(
            f"{payload.get('method')} calibrator: "
            + "; ".join(
                part
                for part in (
                    f"missing key(s) {missing}" if missing else "",
                    f"unknown key(s) {extra}" if extra else "",
                )
                if part
            )
        )


def _finite_float(payload: Mapping[str, Any], key: str) -> float:
    value = payload[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{payload['method']} calibrator: {key!r} must be a finite number")
    return float(value)


@dataclass(frozen=True, eq=False)
class IsotonicCalibrator(Calibrator):
    """Isotonic calibration: knots ``x`` (raw scores, non-decreasing) and ``y``
    (probabilities, non-decreasing); linear between knots, constant outside."""

    x: FloatArray
    y: FloatArray
    method: ClassVar[Method] = "isotonic"

    def _transform(self, raw: FloatArray) -> FloatArray:
        return np.interp(raw, self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "x": self.x.tolist(), "y": self.y.tolist()}

    @classmethod
    def _from_dict(cls, payload: Mapping[str, Any]) -> IsotonicCalibrator:
        _check_keys(payload, {"method", "x", "y"})
        arrays = {}
        for key in ("x", "y"):
            values = payload[key]
            if not isinstance(values, Sequence) or isinstance(values, str) or not values:
                raise ValueError(f"isotonic calibrator: {key!r} must be a non-empty list")
            try:
                arr = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"isotonic calibrator: {key!r} must hold numbers") from exc
            if arr.ndim != 1 or not np.all(np.isfinite(arr)):
                raise ValueError(f"isotonic calibrator: {key!r} must be a list of finite numbers")
            if np.any((arr < 0.0) | (arr > 1.0)):
                raise ValueError(f"isotonic calibrator: {key!r} values must be in [0, 1]")
            if np.any(np.diff(arr) < 0):
                raise ValueError(f"isotonic calibrator: {key!r} must be non-decreasing")
            arrays[key] = arr
        if arrays["x"].size != arrays["y"].size:
            raise ValueError(
                f"isotonic calibrator: 'x' and 'y' differ in length "
                f"({arrays['x'].size} and {arrays['y'].size})"
            )
        return cls(x=arrays["x"], y=arrays["y"])


@dataclass(frozen=True)
class PlattCalibrator(Calibrator):
    """Platt calibration: ``sigmoid(a · logit(raw) + b)`` with ``a`` ≥ 0."""

    a: float
    b: float
    method: ClassVar[Method] = "platt"

    def _transform(self, raw: FloatArray) -> FloatArray:
        return sigmoid(self.a * logit(raw) + self.b)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": float(self.a), "b": float(self.b)}

    @classmethod
    def _from_dict(cls, payload: Mapping[str, Any]) -> PlattCalibrator:
        _check_keys(payload, {"method", "a", "b"})
        a, b = _finite_float(payload, "a"), _finite_float(payload, "b")
        if a < 0:
            raise ValueError(
                f"platt calibrator: 'a' = {a} is negative, which would reverse the ranking"
            )
        return cls(a=a, b=b)


# --- fitting ----------------------------------------------------------------------------


def fit_logistic(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    smooth_targets: bool = True,
    l2: float = 1e-9,
    max_iter: int = 100,
) -> tuple[float, float]:
    """Maximum-likelihood ``(slope, intercept)`` of P(y = 1 | x) = sigmoid(slope·x + b),
    by Newton's method on the two parameters.

    ``smooth_targets`` replaces the 0/1 targets by Platt's (1/(n₋+2), (n₊+1)/(n₊+2)),
    which keeps the solution finite when the classes are separable; ``l2`` is a tiny
    ridge on the slope for numerical safety. Needs both classes.
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = _as_labels(y, xs.size)
    if xs.ndim != 1 or not np.all(np.isfinite(xs)):
        raise ValueError("x must be a 1-D array of finite numbers")
    n_pos = float(ys.sum())
    n_neg = float(ys.size) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"a logistic fit needs both classes; got {int(n_pos)} positive(s) and "
            f"{int(n_neg)} negative(s)"
        )
    t = ys
    if smooth_targets:
        t = np.where(ys == 1.0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    # Start at slope 0 and the log-odds of the mean target: the constant-probability model.
    theta = np.array([0.0, math.log(t.mean() / (1.0 - t.mean()))])
    design = np.column_stack([xs, np.ones_like(xs)])
    penalty = np.array([l2, 0.0])

    def objective(th: FloatArray) -> float:
        z = design @ th
        # Σ log(1 + e^z) − t·z, stably
        return float(np.sum(np.logaddexp(0.0, z) - t * z) + 0.5 * np.sum(penalty * th**2))

    current = objective(theta)
    for _ in range(max_iter):
        prob = sigmoid(design @ theta)
        gradient = design.T @ (prob - t) + penalty * theta
        weights = prob * (1.0 - prob)
        hessian = (design * weights[:, None]).T @ design + np.diag(penalty + 1e-12)
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            step = gradient / max(float(np.trace(hessian)), 1e-12)
        scale = 1.0
        while scale > 1e-10:
            candidate = theta - scale * step
            value = objective(candidate)
            if value <= current:
                break
            scale /= 2.0
        else:
            break
        converged = abs(current - value) <= 1e-12 * max(1.0, abs(current))
        theta, current = candidate, value
        if converged or float(np.max(np.abs(scale * step))) < 1e-10:
            break
    return float(theta[0]), float(theta[1])


def fit_platt(raw_p: npt.ArrayLike, y: npt.ArrayLike) -> PlattCalibrator:
    """Fit Platt calibration on (raw score, label) rows of validation data. When the fitted
    slope comes out negative (the raw score ranks backwards) it is set to 0 and only the
    intercept is fitted: a constant base-rate prediction rather than a reversed ranking."""
    raw = _as_probabilities(raw_p)
    labels = _as_labels(y, raw.size)
    z = logit(raw)
    a, b = fit_logistic(z, labels)
    if a < 0:
        a, b = 0.0, fit_logistic(np.zeros_like(z), labels)[1]
    return PlattCalibrator(a=a, b=b)


def fit_platt_shape(raw_p: npt.ArrayLike, y: npt.ArrayLike) -> PlattCalibrator:
    """Platt's slope from validation rows, with the intercept set so that the calibrated
    mean on those rows equals the raw mean: the calibrator corrects how spread out the
    model's probabilities are, not their level.

    For models trained on years of history and validated on one recent period: that
    period's own level (a good or bad quarter) is noise to the model, while the spread
    (over- or under-confidence) is a property of the model that carries over. A negative
    slope is set to 0 as in :func:`fit_platt`."""
    raw = _as_probabilities(raw_p)
    labels = _as_labels(y, raw.size)
    z = logit(raw)
    a, _ = fit_logistic(z, labels)
    a = max(a, 0.0)
    target = float(raw.mean())
    lo, hi = -20.0, 20.0
    for _ in range(100):  # bisection: the calibrated mean increases with the intercept
        mid = 0.5 * (lo + hi)
        if float(sigmoid(a * z + mid).mean()) < target:
            lo = mid
        else:
            hi = mid
    return PlattCalibrator(a=a, b=0.5 * (lo + hi))


def fit_isotonic(raw_p: npt.ArrayLike, y: npt.ArrayLike) -> IsotonicCalibrator:
    """Fit isotonic calibration on (raw score, label) rows of validation data."""
    raw = _as_probabilities(raw_p)
    labels = _as_labels(y, raw.size)
    if raw.size == 0:
        raise ValueError("isotonic calibration needs at least one row")
    # imported here: scikit-learn costs seconds at import and scoring never needs it
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(raw, labels)
    return IsotonicCalibrator(
        x=np.asarray(iso.X_thresholds_, dtype=np.float64),
        y=np.asarray(iso.y_thresholds_, dtype=np.float64),
    )


_FITTERS: Final = {"isotonic": fit_isotonic, "platt": fit_platt}


def _stratified_folds(y: FloatArray, folds: int, seed: int) -> npt.NDArray[np.int64]:
    rng = np.random.default_rng(seed)
    fold = np.empty(y.size, dtype=np.int64)
    for cls in (0.0, 1.0):
        rows = np.flatnonzero(y == cls)
        fold[rng.permutation(rows)] = np.arange(rows.size) % folds
    return fold


def fit_calibrator(
    raw_p: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    methods: Sequence[Method] = METHODS,
    folds: int = 5,
    seed: int = 0,
) -> tuple[Calibrator, dict[str, Any]]:
    """Fit each method on validation rows (raw scores of a model that never saw them, and
    their 0/1 labels) and return the one with the lowest cross-fitted log loss, refitted
    on all rows, with a JSON-able report.

    Cross-fitting: the rows are split into ``folds`` stratified folds (fewer when a class
    has fewer rows); each fold is predicted by a calibrator fitted on the others. The
    report holds ``chosen``, ``log_loss`` (cross-fitted, per method), ``log_loss_in_sample``
    (per method, refitted on all rows), ``log_loss_uncalibrated`` (the raw scores), ``n``,
    ``positives`` and ``folds``. Ties go to the earlier method in ``methods``.

    Raises ``ValueError`` with fewer than 2 positives or 2 negatives: there is nothing to
    calibrate on. See the module docstring for the leakage caveat.
    """
    raw = _as_probabilities(raw_p)
    labels = _as_labels(y, raw.size)
    unknown = [m for m in methods if m not in _FITTERS]
    if unknown or not methods:
        raise ValueError(f"unknown calibration method(s) {unknown}; choose from {list(METHODS)}")
    n_pos = int(labels.sum())
    n_neg = raw.size - n_pos
    if min(n_pos, n_neg) < 2:
        raise ValueError(
            f"calibration needs at least 2 positive and 2 negative validation rows; got "
            f"{n_pos} positive(s) and {n_neg} negative(s) among {raw.size} rows"
        )
    k = max(2, min(folds, n_pos, n_neg))
    fold = _stratified_folds(labels, k, seed)
    cross: dict[str, float] = {}
    in_sample: dict[str, float] = {}
    fitted: dict[str, Calibrator] = {}
    for method in methods:
        out_of_fold = np.empty(raw.size, dtype=np.float64)
        for f in range(k):
            held = fold == f
            calibrator = _FITTERS[method](raw[~held], labels[~held])
            out_of_fold[held] = calibrator.predict(raw[held])
        cross[method] = log_loss(labels, out_of_fold)
        fitted[method] = _FITTERS[method](raw, labels)
        in_sample[method] = log_loss(labels, fitted[method].predict(raw))
    chosen = min(methods, key=lambda m: cross[m])
    report: dict[str, Any] = {
        "chosen": chosen,
        "selection": f"lowest {k}-fold cross-fitted log loss on the validation rows",
        "log_loss": cross,
        "log_loss_in_sample": in_sample,
        "log_loss_uncalibrated": log_loss(labels, raw),
        "n": int(raw.size),
        "positives": n_pos,
        "folds": k,
    }
    return fitted[chosen], report
