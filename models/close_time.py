"""The deal close-time model: discrete-time competing hazards with LightGBM.

Each open-deal snapshot is expanded into weekly rows (``models.deal_snapshots``); one
LightGBM multiclass model over {still open, won, lost} learns the weekly hazards from the
snapshot's point-in-time features plus the number of weeks since the snapshot. Chaining the
hazards gives each deal's cumulative incidence of won and of lost for every week up to the
horizon (26 weeks by default), so open deals are censored honestly and won / lost compete.

From the curves: P(won within 30 / 60 / 90 days) — recalibrated on the validation
snapshots, one calibrator per horizon (the spread only, see ``fit_close_time``), then kept
non-decreasing in the horizon —, P(lost
within 90 days), P(eventually won) (the horizon's incidence plus the still-open share
split as in the last weeks) and P10 / P50 / P90 of the won date given a win within the
horizon. A bundle holds the LightGBM text model and JSON; no pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from data_contracts import tables as T
from data_contracts.spec import Column
from features.deal_features import (
    OwnerDealHistory,
    build_close_time_features,
    close_time_feature_encoder,
)
from features.encoding import FeatureEncoder
from features.lead_features import AS_OF
from models.bundle import LoadedBundle, load_bundle, save_bundle
from models.calibration import Calibrator, fit_platt_shape
from models.competing_risks import (
    WEEK_DAYS,
    WON,
    cumulative_incidence,
    curve_at,
    eventual_win,
    won_time_quantiles,
)
from models.conversion import _column_from_dict, _column_to_dict
from models.deal_snapshots import PersonPeriod, person_period
from models.metrics import log_loss
from models.risk_flags import RiskFlag, RiskFlagConfig, StageDwell, flag_deals

KIND: Final = "deal-close-time"
BOOSTER: Final = "booster"
WEEKS_AHEAD: Final = "weeks_ahead"
#: Horizons (days) whose P(won within) is calibrated and reported.
HORIZONS: Final[tuple[int, ...]] = (30, 60, 90)
QUANTILES: Final[tuple[float, ...]] = (0.1, 0.5, 0.9)
CALIBRATION_WHY: Final = (
    "the validation quarter sets only the spread of the probabilities (Platt's slope); "
    "their level stays the one learned from the whole training history, because one "
    "quarter's level is mostly that quarter's luck"
)


class CloseTimeSettings(BaseModel):
    """LightGBM settings of the close-time model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=15, ge=2)
    min_leaf_share: float = Field(
        default=0.012,
        gt=0,
        lt=0.5,
        description="fewest weekly rows per leaf, as a share of the training rows: the rows "
        "of one deal are strongly dependent, so leaves must span many deals",
    )
    min_data_in_leaf: int = Field(default=50, ge=1, description="floor of the above")
    feature_fraction: float = Field(default=0.8, gt=0, le=1)
    bagging_fraction: float = Field(default=0.7, gt=0, le=1)
    lambda_l2: float = Field(default=1.0, ge=0)
    max_rounds: int = Field(default=2000, ge=1)
    early_stopping_rounds: int = Field(default=100, ge=1)
    min_category_count: int = Field(default=20, ge=1)
    seed: int = 7
    num_threads: int = Field(default=2, ge=1)

    def lgb_params(self, n_rows: int = 0) -> dict[str, Any]:
        """LightGBM parameters for ``n_rows`` training rows (weekly rows)."""
        return {
            "objective": "multiclass",
            "num_class": 3,
            "metric": "multi_logloss",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": max(self.min_data_in_leaf, int(self.min_leaf_share * n_rows)),
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "cat_smooth": 10.0,
            "max_cat_to_onehot": 8,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }


def expand(matrix: np.ndarray, weeks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Weekly design matrix: the snapshot features of ``rows`` plus the week column."""
    out = np.empty((len(rows), matrix.shape[1] + 1), dtype=np.float64)
    out[:, :-1] = matrix[rows]
    out[:, -1] = weeks
    return out


@dataclass
class Outlook:
    """Per snapshot row: the curves and their summaries (days count from ``as_of``)."""

    cif_won: np.ndarray  # (n, K) uncalibrated, at the end of each week
    cif_lost: np.ndarray
    p_won: dict[int, np.ndarray]  # calibrated P(won within h days), h in HORIZONS
    p_lost_90d: np.ndarray
    p_win: np.ndarray  # P(eventually won)
    won_days_quantiles: np.ndarray  # (n, 3): P10 / P50 / P90 days to the won date given won

    def raw_won_within(self, days: np.ndarray | float) -> np.ndarray:
        """Uncalibrated P(won within ``days``) (scalar or one value per row)."""
        return curve_at(self.cif_won, days)

    def won_by_expected(self, days_to_expected: np.ndarray) -> np.ndarray:
        """P(won by the rep's expected close date) for dates still ahead; NaN where the
        date is missing or already passed (a passed date is the 'slipped' flag's job)."""
        ahead = np.nan_to_num(days_to_expected, nan=-1.0) >= 0
        return np.where(ahead, self.raw_won_within(np.where(ahead, days_to_expected, 0.0)), np.nan)


@dataclass
class CloseTimeModel:
    """A fitted close-time model: everything needed to score, all JSON-serialisable."""

    booster: lgb.Booster
    encoder: FeatureEncoder
    calibrators: dict[int, Calibrator]
    owner_deals: OwnerDealHistory
    deal_custom: list[Column]
    lead_custom: list[Column]
    horizon_weeks: int
    dwell: StageDwell
    flag_config: RiskFlagConfig
    meta: dict[str, Any] = field(default_factory=dict)
    #: flags the training data cannot support (e.g. "silent" when it has no deal activity)
    flags_disabled: list[str] = field(default_factory=list)

    @property
    def feature_names(self) -> list[str]:
        return [*self.encoder.feature_names, WEEKS_AHEAD]

    def features(self, snapshots: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Raw point-in-time features (the shared feature function) from the contract
        tables ``leads``, ``stage_history`` and ``activities``."""
        return build_close_time_features(
            snapshots,
            leads=tables["leads"],
            stage_history=tables["stage_history"],
            activities=tables["activities"],
            owner_deals=self.owner_deals,
            deal_custom=self.deal_custom,
            lead_custom=self.lead_custom,
        )

    def hazards(self, matrix: np.ndarray, chunk: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
        """Weekly hazards ``(h_won, h_lost)`` ``(n, K)`` of encoded snapshot rows."""
        n, k = len(matrix), self.horizon_weeks
        h_won = np.empty((n, k))
        h_lost = np.empty((n, k))
        weeks = np.tile(np.arange(k, dtype=np.float64), chunk)
        for start in range(0, n, chunk):
            part = matrix[start : start + chunk]
            m = len(part)
            rows = np.repeat(np.arange(m), k)
            prob = np.asarray(self.booster.predict(expand(part, weeks[: m * k], rows)))
            prob = prob.reshape(m, k, 3)
            h_won[start : start + m] = prob[:, :, WON]
            h_lost[start : start + m] = prob[:, :, 2]
        return h_won, h_lost

    def outlook(self, matrix: np.ndarray) -> Outlook:
        """Curves and summaries for encoded snapshot rows (see the module docstring)."""
        cif_won, cif_lost = cumulative_incidence(*self.hazards(matrix))
        p_won: dict[int, np.ndarray] = {}
        floor = np.zeros(len(matrix))
        for h in HORIZONS:
            p = self.calibrators[h].predict(curve_at(cif_won, float(h)))
            floor = np.maximum(floor, p)  # a longer window never has a smaller chance
            p_won[h] = floor.copy()
        p_win = np.maximum(eventual_win(cif_won, cif_lost), p_won[HORIZONS[-1]])
        return Outlook(
            cif_won=cif_won,
            cif_lost=cif_lost,
            p_won=p_won,
            # the calibrated won chance takes its share from the lost one: never sum over 1
            p_lost_90d=np.minimum(curve_at(cif_lost, 90.0), 1.0 - p_won[90]),
            p_win=p_win,
            won_days_quantiles=won_time_quantiles(cif_won, QUANTILES),
        )

    def outlook_table(
        self, snapshots: pd.DataFrame, tables: dict[str, pd.DataFrame]
    ) -> tuple[pd.DataFrame, list[list[RiskFlag]]]:
        """The outlook of each snapshot row as a table, and its risk flags.

        Columns: ``current_stage``, ``p_win``, ``p_won_30d`` / ``60d`` / ``90d``
        (calibrated), ``p_lost_90d``, ``p_won_by_expected_close`` (uncalibrated curve at
        the rep's date; NaN without one or once it has passed), ``expected_close_date``
        (the rep's, as known at ``as_of``), ``close_date_p10`` / ``p50`` / ``p90`` (won
        date given a win within the horizon) and ``flags`` (codes joined by ``,``). Index
        as ``snapshots``.
        """
        raw = self.features(snapshots, tables)
        out = self.outlook(self.encoder.transform(raw))
        days_to = raw["days_to_expected_close"].to_numpy(np.float64)
        p_by_expected = out.won_by_expected(days_to)
        flags = self.flags(raw, p_by_expected)
        as_of = snapshots[AS_OF].to_numpy("datetime64[us]")
        day0 = as_of.astype("datetime64[D]")
        expected = np.where(
            np.isnan(days_to),
            np.datetime64("NaT"),
            day0 + np.nan_to_num(days_to).astype(np.int64).astype("timedelta64[D]"),
        ).astype("datetime64[D]")
        table = pd.DataFrame(
            {
                "current_stage": raw["current_stage"].to_numpy(dtype=object),
                "p_win": out.p_win,
                **{f"p_won_{h}d": out.p_won[h] for h in HORIZONS},
                "p_lost_90d": out.p_lost_90d,
                "p_won_by_expected_close": p_by_expected,
                "expected_close_date": expected,
                **{
                    f"close_date_p{round(q * 100)}": won_dates(as_of, out.won_days_quantiles[:, j])
                    for j, q in enumerate(QUANTILES)
                },
                "flags": [",".join(f.code for f in row) for row in flags],
            },
            index=snapshots.index,
        )
        return table, flags

    def flags(self, raw: pd.DataFrame, p_won_by_expected: np.ndarray) -> list[list[RiskFlag]]:
        """Risk flags of raw feature rows given P(won by the expected date) from their
        outlook (:meth:`Outlook.won_by_expected`); flags the training data could not
        support are left out (see :attr:`flags_disabled`)."""
        flags = flag_deals(
            raw,
            p_won_by_expected=p_won_by_expected,
            dwell=self.dwell,
            config=self.flag_config,
        )
        if not self.flags_disabled:
            return flags
        return [[f for f in row if f.code not in self.flags_disabled] for row in flags]

    # -- bundle ---------------------------------------------------------------------------
    def save(
        self, directory: Path, *, metrics: dict[str, Any], fingerprint: dict[str, Any]
    ) -> None:
        payload = {
            "features": {
                "encoder": self.encoder.to_dict(),
                "extra": [WEEKS_AHEAD],
                "deal_custom": [_column_to_dict(c) for c in self.deal_custom],
                "lead_custom": [_column_to_dict(c) for c in self.lead_custom],
                "owner_deals": self.owner_deals.to_dict(),
            },
            "horizon_weeks": self.horizon_weeks,
            "calibrators": {str(h): c.to_dict() for h, c in self.calibrators.items()},
            "risk_flags": {
                "config": self.flag_config.model_dump(mode="json"),
                "stage_dwell": self.dwell.to_dict(),
                "disabled": list(self.flags_disabled),
            },
            "fingerprint": fingerprint,
            "metrics": metrics,
            "meta": self.meta,
        }
        save_bundle(directory, kind=KIND, boosters={BOOSTER: self.booster}, payload=payload)

    @classmethod
    def load(cls, directory: Path) -> CloseTimeModel:
        """Load a verified bundle (checksums are checked before LightGBM reads anything)."""
        return cls.from_bundle(load_bundle(directory))

    @classmethod
    def from_bundle(cls, bundle: LoadedBundle) -> CloseTimeModel:
        if bundle.info.kind != KIND:
            raise ValueError(
                f"bundle is a {bundle.info.kind!r} model, not {KIND!r}; "
                "load it with the class for its kind"
            )
        payload = bundle.payload
        feats = payload["features"]
        flags = payload["risk_flags"]
        return cls(
            booster=bundle.boosters[BOOSTER],
            encoder=FeatureEncoder.from_dict(feats["encoder"]),
            calibrators={
                int(h): Calibrator.from_dict(c) for h, c in payload["calibrators"].items()
            },
            owner_deals=OwnerDealHistory.from_dict(feats["owner_deals"]),
            deal_custom=[_column_from_dict(c) for c in feats["deal_custom"]],
            lead_custom=[_column_from_dict(c) for c in feats["lead_custom"]],
            horizon_weeks=int(payload["horizon_weeks"]),
            dwell=StageDwell.from_dict(flags["stage_dwell"]),
            flag_config=RiskFlagConfig.model_validate(flags["config"]),
            meta=dict(payload.get("meta", {})),
            flags_disabled=list(flags.get("disabled", [])),
        )


@dataclass
class FittedCloseTime:
    model: CloseTimeModel
    best_iteration: int
    calibration_report: dict[str, Any]
    feature_importance: dict[str, float]


def _weekly(
    x: np.ndarray, time: np.ndarray, event: np.ndarray, horizon_weeks: int, naive: bool
) -> tuple[np.ndarray, PersonPeriod]:
    pp = person_period(time, event, horizon_weeks, naive_open_as_lost=naive)
    return expand(x, pp.week.astype(np.float64), pp.snapshot_row), pp


def fit_close_time(
    train_x: pd.DataFrame,
    train_time: np.ndarray,
    train_event: np.ndarray,
    valid_x: pd.DataFrame,
    valid_time: np.ndarray,
    valid_event: np.ndarray,
    *,
    owner_deals: OwnerDealHistory,
    dwell: StageDwell,
    flag_config: RiskFlagConfig,
    deal_custom: Sequence[Column],
    lead_custom: Sequence[Column],
    horizon_weeks: int,
    settings: CloseTimeSettings,
    naive_open_as_lost: bool = False,
) -> FittedCloseTime:
    """Fit the encoder and the weekly-hazard booster on the training snapshots (early
    stopping on the validation snapshots' weekly rows), then one calibrator per horizon on
    the validation snapshots, whose windows are complete (``models.deal_snapshots``):
    Platt's slope with the level kept (:func:`~models.calibration.fit_platt_shape`).

    Inputs are raw feature frames from :func:`build_close_time_features`, with each
    snapshot's follow-up ``time`` (days) and ``event`` code. ``naive_open_as_lost`` trains
    the classic mistake (open deals counted as lost) for comparison only.
    """
    encoder = close_time_feature_encoder(deal_custom, lead_custom)
    encoder.fit(train_x, min_count=settings.min_category_count)
    x_train = encoder.transform(train_x)
    x_valid = encoder.transform(valid_x)
    w_train, pp_train = _weekly(x_train, train_time, train_event, horizon_weeks, naive_open_as_lost)
    w_valid, pp_valid = _weekly(x_valid, valid_time, valid_event, horizon_weeks, naive_open_as_lost)
    names = [*encoder.feature_names, WEEKS_AHEAD]
    dtrain = lgb.Dataset(
        w_train,
        label=pp_train.label,
        weight=pp_train.weight,
        feature_name=names,
        categorical_feature=encoder.categorical_indices,
        free_raw_data=True,
    )
    dvalid = lgb.Dataset(w_valid, label=pp_valid.label, weight=pp_valid.weight, reference=dtrain)
    del w_train
    params = settings.lgb_params(len(pp_train.label))
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=settings.max_rounds,
        valid_sets=[dvalid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    gains = booster.feature_importance(importance_type="gain")
    importance = {n: float(g) for n, g in zip(names, gains, strict=True)}
    model = CloseTimeModel(
        booster=booster,
        encoder=encoder,
        calibrators={},
        owner_deals=owner_deals,
        deal_custom=list(deal_custom),
        lead_custom=list(lead_custom),
        horizon_weeks=horizon_weeks,
        dwell=dwell,
        flag_config=flag_config,
        meta={"best_iteration": best, "params": params},
    )
    cif_won, _ = cumulative_incidence(*model.hazards(x_valid))
    report: dict[str, Any] = {"method": "platt_shape", "why": CALIBRATION_WHY}
    valid_t, valid_e = np.asarray(valid_time), np.asarray(valid_event)
    for h in HORIZONS:
        known = (valid_t > h) | (valid_e != 0)
        y = ((valid_e == WON) & (valid_t <= h)).astype(np.float64)[known]
        raw = curve_at(cif_won, float(h))[known]
        calibrator = fit_platt_shape(raw, y)
        model.calibrators[h] = calibrator
        report[f"{h}d"] = {
            "n": int(known.sum()),
            "observed": float(y.mean()),
            "mean_raw": float(raw.mean()),
            "slope": calibrator.a,
            "intercept": calibrator.b,
            "log_loss_raw": log_loss(y, raw),
            "log_loss_calibrated": log_loss(y, calibrator.predict(raw)),
        }
    return FittedCloseTime(model, best, report, importance)


def won_dates(as_of: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Dates (datetime64[D]) ``days`` after ``as_of``; NaT where ``days`` is NaN."""
    base = np.asarray(as_of).astype("datetime64[s]")
    seconds = np.where(np.isnan(days), 0, np.round(days * 86_400.0)).astype(np.int64)
    out = (base + seconds.astype("timedelta64[s]")).astype("datetime64[D]")
    out[np.isnan(days)] = np.datetime64("NaT")
    return out


def open_deals_at(deals: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Deals created before ``as_of`` and not closed by then, with an ``as_of`` column
    (batch outlooks; ``closed_at`` decides openness only and is never a feature)."""
    closed = deals[T.CLOSED_AT]
    open_ = (deals[T.CREATED_AT] < as_of) & (closed.isna() | (closed > as_of))
    return deals[open_.to_numpy()].assign(**{AS_OF: np.datetime64(as_of.to_datetime64(), "us")})


__all__ = [
    "HORIZONS",
    "KIND",
    "QUANTILES",
    "WEEK_DAYS",
    "CloseTimeModel",
    "CloseTimeSettings",
    "FittedCloseTime",
    "Outlook",
    "fit_close_time",
    "open_deals_at",
    "won_dates",
]
