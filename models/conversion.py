"""The lead-conversion model: LightGBM on point-in-time snapshots, calibrated, graded.

``train_conversion`` fits the booster on training snapshots with early stopping on the
validation snapshots, then picks isotonic or Platt calibration on the same validation
rows. ``ConversionModel`` is what scores: features (the shared feature function) →
encoded matrix → raw margin → calibrated probability → grade, with reasons on request —
fast path contributions (:mod:`models.attribution`, precomputed when the model loads) or,
for evaluation, exact TreeSHAP. It saves to and loads from a bundle (LightGBM text +
JSON, no pickle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from data_contracts.spec import Column
from data_contracts.vocabulary import Lang
from features.encoding import FeatureEncoder
from features.lead_features import (
    AS_OF,
    WINDOWS,
    OwnerHistory,
    activity_columns,
    build_lead_features,
    count_feature,
    lead_columns,
    lead_feature_arrays,
    lead_feature_encoder,
)
from models.attribution import PathAttribution, exact_contributions
from models.bundle import LoadedBundle, load_bundle, save_bundle
from models.calibration import Calibrator, fit_calibrator
from models.grades import GradeCutoffs, grade_array
from models.reasons import Reason, as_reasons, top_reason_dicts

KIND: Final = "lead-conversion"
BOOSTER: Final = "booster"


class ConversionSettings(BaseModel):
    """LightGBM and grading settings of the conversion model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=31, ge=2)
    min_data_in_leaf: int = Field(default=200, ge=1)
    feature_fraction: float = Field(default=0.8, gt=0, le=1)
    bagging_fraction: float = Field(default=0.8, gt=0, le=1)
    lambda_l2: float = Field(default=1.0, ge=0)
    max_rounds: int = Field(default=2000, ge=1)
    early_stopping_rounds: int = Field(default=100, ge=1)
    min_category_count: int = Field(default=20, ge=1)
    cutoffs: GradeCutoffs = GradeCutoffs()
    seed: int = 7
    num_threads: int = Field(default=2, ge=1)

    def lgb_params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "cat_smooth": 10.0,
            "max_cat_to_onehot": 8,
            "monotone_constraints_method": "basic",
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }


def monotone_directions(encoder: FeatureEncoder) -> list[int]:
    """+1 for features more engagement can only raise (meetings, touch counts, trend),
    −1 for days since the last touch: a new recent meeting never lowers the score."""
    up = {count_feature("meeting", w) for w in WINDOWS}
    up |= {f"n_touches_{w}d" for w in WINDOWS} | {"n_touches_total", "touch_velocity"}
    down = {"days_since_last_touch"}
    return [1 if n in up else -1 if n in down else 0 for n in encoder.feature_names]


@dataclass
class ConversionModel:
    """A fitted conversion model: everything needed to score, all JSON-serialisable."""

    booster: lgb.Booster
    encoder: FeatureEncoder
    calibrator: Calibrator
    owner_history: OwnerHistory
    custom: list[Column]
    cutoffs: GradeCutoffs
    meta: dict[str, Any] = field(default_factory=dict)

    def features(self, snapshots: pd.DataFrame, activities: pd.DataFrame) -> pd.DataFrame:
        """Raw point-in-time features (the shared feature function)."""
        return build_lead_features(snapshots, activities, self.owner_history, self.custom)

    def predict_raw(self, matrix: np.ndarray) -> np.ndarray:
        """Uncalibrated probability from the booster."""
        return np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probability of converting within the horizon."""
        return self.calibrator.predict(self.predict_raw(matrix))

    @cached_property
    def attribution(self) -> PathAttribution:
        """The booster's per-leaf path contributions (built once; at load by
        :meth:`from_bundle`)."""
        return PathAttribution.from_booster(self.booster)

    def contributions(self, matrix: np.ndarray, *, exact: bool = False) -> np.ndarray:
        """Per-feature log-odds contributions of each row, ``(rows, features + 1)`` with
        the bias last; fast path contributions, or exact TreeSHAP (~100× slower)."""
        if exact:
            return exact_contributions(self.booster, matrix)
        return self.attribution.contributions(self.booster, matrix)

    def score_columns(
        self,
        leads: Mapping[str, np.ndarray],
        activities: Mapping[str, np.ndarray],
        *,
        reasons: int = 0,
        exact_reasons: bool = False,
        lang: Lang | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[dict[str, list[dict[str, Any]]]] | None]:
        """Probability and grade per row of ``leads`` (columns as
        :func:`features.lead_features.lead_feature_arrays` reads them); with
        ``reasons > 0`` also the top positive / negative reasons per row, as JSON-ready
        dicts in both languages or in ``lang`` (:func:`models.reasons.top_reason_dicts`).

        With reasons, the probability comes from the contributions, which add up to the
        raw margin (one pass over the trees instead of two; equal to the predict's to
        ~1e-15)."""
        features = lead_feature_arrays(leads, activities, self.owner_history, self.custom)
        matrix = self.encoder.encode(features)
        explained = None
        if reasons > 0:
            contrib = self.contributions(matrix, exact=exact_reasons)
            scale = self.attribution.sigmoid_scale  # None: not binary, use the predict
            raw = (
                self.predict_raw(matrix)
                if scale is None
                else 1.0 / (1.0 + np.exp(-scale * contrib.sum(axis=1)))
            )
            labels = {c.name: (c.label_en, c.label_zh) for c in self.custom}
            explained = top_reason_dicts(
                contrib, matrix, self.encoder, k=reasons, labels=labels, lang=lang
            )
        else:
            raw = self.predict_raw(matrix)
        prob = self.calibrator.predict(raw)
        return prob, grade_array(prob, self.cutoffs), explained

    def score(
        self,
        snapshots: pd.DataFrame,
        activities: pd.DataFrame,
        *,
        reasons: int = 0,
        exact_reasons: bool = False,
    ) -> tuple[pd.DataFrame, list[dict[str, list[Reason]]] | None]:
        """:meth:`score_columns` of snapshot and activity frames: probability and grade per
        snapshot row (same index), and the reasons on request."""
        prob, grades, explained = self.score_columns(
            lead_columns(snapshots, self.custom),
            activity_columns(activities),
            reasons=reasons,
            exact_reasons=exact_reasons,
        )
        out = pd.DataFrame({"probability": prob, "grade": grades}, index=snapshots.index)
        return out, None if explained is None else as_reasons(explained)

    # -- bundle ---------------------------------------------------------------------------
    def save(
        self, directory: Path, *, metrics: dict[str, Any], fingerprint: dict[str, Any]
    ) -> None:
        payload = {
            "features": {
                "encoder": self.encoder.to_dict(),
                "custom": [_column_to_dict(c) for c in self.custom],
                "owner_history": self.owner_history.to_dict(),
            },
            "calibrator": self.calibrator.to_dict(),
            "grade_cutoffs": self.cutoffs.model_dump(),
            "fingerprint": fingerprint,
            "metrics": metrics,
            "meta": self.meta,
        }
        save_bundle(directory, kind=KIND, boosters={BOOSTER: self.booster}, payload=payload)

    @classmethod
    def load(cls, directory: Path) -> ConversionModel:
        """Load a verified bundle (checksums are checked before LightGBM reads anything)."""
        return cls.from_bundle(load_bundle(directory))

    @classmethod
    def from_bundle(cls, bundle: LoadedBundle) -> ConversionModel:
        payload = bundle.payload
        feats = payload["features"]
        model = cls(
            booster=bundle.boosters[BOOSTER],
            encoder=FeatureEncoder.from_dict(feats["encoder"]),
            calibrator=Calibrator.from_dict(payload["calibrator"]),
            owner_history=OwnerHistory.from_dict(feats["owner_history"]),
            custom=[_column_from_dict(c) for c in feats["custom"]],
            cutoffs=GradeCutoffs.model_validate(payload["grade_cutoffs"]),
            meta=dict(payload.get("meta", {})),
        )
        return model.prepare()

    def prepare(self) -> ConversionModel:
        """Build what the request path looks up (encoder dictionaries, the owner-history
        index, the path contributions) now rather than on the first request."""
        self.encoder.prepare()
        self.owner_history.prepare()
        _ = self.attribution
        return self


def _column_to_dict(column: Column) -> dict[str, Any]:
    return {
        "name": column.name,
        "dtype": column.dtype.value,
        "label_en": column.label_en,
        "label_zh": column.label_zh,
    }


def _column_from_dict(data: dict[str, Any]) -> Column:
    from data_contracts.spec import ColumnType

    return Column(
        data["name"],
        ColumnType(data["dtype"]),
        label_en=data["label_en"],
        label_zh=data["label_zh"],
        custom=True,
    )


@dataclass
class FittedConversion:
    """The trained model plus what evaluation needs: encoded matrices of each part."""

    model: ConversionModel
    best_iteration: int
    calibration_report: dict[str, Any]
    feature_importance: dict[str, float]


def fit_conversion(
    train_x: pd.DataFrame,
    train_y: np.ndarray,
    valid_x: pd.DataFrame,
    valid_y: np.ndarray,
    *,
    owner_history: OwnerHistory,
    custom: Sequence[Column],
    settings: ConversionSettings,
) -> FittedConversion:
    """Fit encoder and booster on the training rows (early stopping on validation), then
    choose the calibrator on the validation rows. Inputs are raw feature frames from
    :func:`build_lead_features`; labels are 0/1 arrays. ``owner_history`` is stored for
    serving (aggregate it at the training cut-off before passing it in)."""
    encoder = lead_feature_encoder(custom).fit(train_x, min_count=settings.min_category_count)
    x_train = encoder.transform(train_x)
    x_valid = encoder.transform(valid_x)
    params = settings.lgb_params()
    params["monotone_constraints"] = monotone_directions(encoder)
    dtrain = lgb.Dataset(
        x_train,
        label=train_y,
        feature_name=encoder.feature_names,
        categorical_feature=encoder.categorical_indices,
        free_raw_data=True,
    )
    dvalid = lgb.Dataset(x_valid, label=valid_y, reference=dtrain)
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
    raw_valid = np.asarray(booster.predict(x_valid), dtype=np.float64)
    calibrator, calibration_report = fit_calibrator(raw_valid, valid_y)
    gains = booster.feature_importance(importance_type="gain")
    importance = {n: float(g) for n, g in zip(encoder.feature_names, gains, strict=True)}
    model = ConversionModel(
        booster=booster,
        encoder=encoder,
        calibrator=calibrator,
        owner_history=owner_history,
        custom=list(custom),
        cutoffs=settings.cutoffs,
        meta={"best_iteration": best, "params": params | {"monotone_constraints": "see encoder"}},
    )
    return FittedConversion(model, best, calibration_report, importance)


def snapshot_frame(leads: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Leads seen at one time (serving, batch scoring): the leads plus an ``as_of`` column."""
    return leads.assign(**{AS_OF: np.datetime64(as_of.to_datetime64(), "us")})
