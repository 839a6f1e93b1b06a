"""Train and evaluate the conversion model on a CRM history, beside its baselines.

Pure logic (no files, no MLflow): tables in, a :class:`ConversionRun` out. Every metric is
computed on the held-out test snapshots (the most recent complete months); the baselines
(BANT rules, Odoo-style naive Bayes, logistic regression) are fitted on the same training
rows and scored on exactly the same test rows. With a truth table (generated data) an
oracle block compares the model to the best possible creation-time score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from data_contracts import tables as T
from data_contracts.spec import Column
from features.lead_features import AS_OF, OwnerHistory, build_lead_features, lead_feature_encoder
from models import metrics as M
from models.attribution import top_k_agreement
from models.bant import BantConfig, fit_mapping, load_default_config, score_frame
from models.baselines import LogisticBaseline, NaiveBayesBaseline
from models.conversion import ConversionModel, ConversionSettings, fit_conversion
from models.snapshots import (
    LABEL,
    SNAPSHOT_INDEX,
    SnapshotSettings,
    SplitWindows,
    assign_split,
    lead_snapshots,
    split_windows,
)


class NotEnoughDataError(RuntimeError):
    """Too few conversions to train a model that would beat the rules."""


class ConversionTrainingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    snapshots: SnapshotSettings = SnapshotSettings()
    model: ConversionSettings = ConversionSettings()
    min_converted_leads: int = Field(default=200, ge=1)
    #: held-out rows on which the served reasons are compared with exact TreeSHAP
    reasons_agreement_rows: int = Field(default=1000, ge=0)
    segments: tuple[str, ...] = ("source", "region")


@dataclass
class ConversionRun:
    """A trained model and its report (all metrics on the same test rows)."""

    model: ConversionModel | None
    windows: SplitWindows
    counts: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)
    test_frame: pd.DataFrame | None = None
    test_probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    feature_importance: dict[str, float] = field(default_factory=dict)


def data_end_of(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The end of the history: the latest timestamp anywhere in the tables (rounded up to
    the next midnight). Censoring is relative to this."""
    stamps = []
    for frame in tables.values():
        for name in frame.columns:
            if (
                pd.api.types.is_datetime64_any_dtype(frame[name].dtype)
                and frame[name].notna().any()
            ):
                stamps.append(frame[name].max())
    return pd.Timestamp(max(stamps)).ceil("D")


def train_and_evaluate(
    tables: dict[str, pd.DataFrame],
    *,
    custom: list[Column],
    settings: ConversionTrainingSettings,
    truth: pd.DataFrame | None = None,
    data_end: pd.Timestamp | None = None,
    bant_config: BantConfig | None = None,
) -> ConversionRun:
    """Snapshots → split → features → LightGBM + calibration → test metrics + baselines.

    Raises :class:`NotEnoughDataError` when the training window holds fewer converted leads
    than ``settings.min_converted_leads`` (BANT rules keep serving then)."""
    leads, activities = tables["leads"], tables["activities"]
    end = data_end if data_end is not None else data_end_of(tables)
    windows = split_windows(end, settings.snapshots)
    snaps = lead_snapshots(leads, end, settings.snapshots)
    snaps["split"] = assign_split(snaps, windows)
    parts = {
        name: snaps[snaps["split"] == name].reset_index(drop=True)
        for name in ("train", "validation", "test")
    }
    converted = int(parts["train"].loc[parts["train"][LABEL] == 1, T.LEAD_ID].nunique())
    counts = {
        "snapshots": {k: len(v) for k, v in parts.items()},
        "positives": {k: int(v[LABEL].sum()) for k, v in parts.items()},
        "converted_leads_in_training": converted,
        "leads": len(leads),
    }
    if converted < settings.min_converted_leads or min(len(v) for v in parts.values()) == 0:
        raise NotEnoughDataError(
            f"only {converted} converted leads in the training window (before "
            f"{windows.train_end.date()}); at least {settings.min_converted_leads} are needed, "
            f"and validation/test need snapshots too (have {counts['snapshots']}). No model is "
            "registered: BANT rules will serve. Add history or lower --min-converted."
        )
    # the owner record is point-in-time per snapshot; for serving it is frozen at data end
    history = OwnerHistory.from_leads(leads)
    feats = {k: build_lead_features(v, activities, history, custom) for k, v in parts.items()}
    ys = {k: v[LABEL].to_numpy() for k, v in parts.items()}
    fitted = fit_conversion(
        feats["train"],
        ys["train"],
        feats["validation"],
        ys["validation"],
        owner_history=history.aggregate(end),
        custom=custom,
        settings=settings.model,
    )
    model = fitted.model
    model.meta |= {"windows": windows.to_dict(), "counts": counts}
    test_x = model.encoder.transform(feats["test"])
    p_model = model.predict(test_x)
    y_test = ys["test"]
    baselines = _baselines(parts, feats, ys, custom, bant_config)
    report: dict[str, Any] = M.classification_report(y_test, p_model)
    report["calibration"] = fitted.calibration_report
    report["best_iteration"] = fitted.best_iteration
    report["baselines"] = {
        name: M.classification_report(y_test, p) for name, p in baselines.items()
    }
    segments = {
        s: parts["test"][s].astype("str").fillna("missing").to_numpy(object)
        for s in settings.segments
        if s in parts["test"]
    }
    report["segments"] = M.segment_report(y_test, p_model, segments)
    report |= _reasons_agreement(model, test_x, settings.reasons_agreement_rows)
    if truth is not None:
        report["oracle"] = _oracle(parts["test"], p_model, truth)
    report["windows"] = windows.to_dict()
    report["counts"] = counts
    return ConversionRun(
        model=model,
        windows=windows,
        counts=counts,
        report=report,
        test_frame=parts["test"],
        test_probabilities={"model": p_model, **baselines},
        feature_importance=fitted.feature_importance,
    )


def _reasons_agreement(model: ConversionModel, x: np.ndarray, rows: int) -> dict[str, Any]:
    """How often the served reasons (fast path contributions) name the features exact
    TreeSHAP names, on up to ``rows`` held-out rows spread over the test period: the share
    of rows with the same top feature, and the mean share of exact's top 5 that the fast
    top 5 also lists (both by absolute contribution)."""
    if rows == 0 or len(x) == 0:
        return {}
    pick = np.unique(np.linspace(0, len(x) - 1, min(rows, len(x))).astype(np.int64))
    agreement = top_k_agreement(
        model.contributions(x[pick]), model.contributions(x[pick], exact=True), k=5
    )
    return {
        "reasons_top1_agreement": agreement["top1"],
        "reasons_top5_agreement": agreement["top5"],
        "reasons_sign_agreement": agreement["sign"],
        "reasons_agreement_rows": len(pick),
    }


def _baselines(
    parts: dict[str, pd.DataFrame],
    feats: dict[str, pd.DataFrame],
    ys: dict[str, np.ndarray],
    custom: list[Column],
    bant_config: BantConfig | None,
) -> dict[str, np.ndarray]:
    """BANT rules (mapping fitted on training rows), naive Bayes and logistic regression,
    each fitted on the training rows only and scored on the test rows."""
    encoder = lead_feature_encoder(custom)
    config = bant_config or load_default_config()
    train_bant = score_frame(parts["train"], config)
    try:
        config = fit_mapping(train_bant, ys["train"], config)
        p_bant = score_frame(parts["test"], config)["score"].to_numpy(np.float64)
    except ValueError:
        # the points do not rank these outcomes (e.g. no BANT answers in the export): the
        # best the rules can then say is the training base rate
        p_bant = np.full(len(parts["test"]), float(np.mean(ys["train"])))
    nb = NaiveBayesBaseline(encoder.categorical).fit(feats["train"], ys["train"])
    logistic = LogisticBaseline(numeric=encoder.numeric, categorical=encoder.categorical)
    logistic.fit(feats["train"], ys["train"])
    return {
        "bant": p_bant,
        "naive_bayes": nb.predict_proba(feats["test"]),
        "logistic": logistic.predict_proba(feats["test"]),
    }


def _oracle(test: pd.DataFrame, p_model: np.ndarray, truth: pd.DataFrame) -> dict[str, Any]:
    """Truth vs model on the test period's creation-time snapshots (where the truth's
    creation-time probability applies)."""
    at_creation = (test[SNAPSHOT_INDEX] == 0).to_numpy()
    rows = test.loc[at_creation, [T.LEAD_ID, LABEL]].reset_index(drop=True)
    p_truth = (
        rows[[T.LEAD_ID]]
        .merge(truth[[T.LEAD_ID, "p_convert_90d"]], on=T.LEAD_ID, how="left")["p_convert_90d"]
        .to_numpy(np.float64)
    )
    have = ~np.isnan(p_truth)
    y = rows[LABEL].to_numpy()[have]
    pm = p_model[at_creation][have]
    pt = p_truth[have]
    return {
        "n": int(have.sum()),
        "auc": M.roc_auc(y, pt),
        "logloss": M.log_loss(y, pt),
        "model_auc": M.roc_auc(y, pm),
        "model_logloss": M.log_loss(y, pm),
    }


def score_latest(
    model: ConversionModel, tables: dict[str, pd.DataFrame], as_of: pd.Timestamp
) -> pd.DataFrame:
    """Score every lead still open at ``as_of`` (batch scoring)."""
    leads = tables["leads"]
    conv, disq = leads[T.CONVERTED_AT], leads[T.DISQUALIFIED_AT]
    open_ = (
        (leads[T.CREATED_AT] < as_of)
        & (conv.isna() | (conv >= as_of))
        & (disq.isna() | (disq >= as_of))
    )
    snaps = leads[open_].assign(**{AS_OF: np.datetime64(as_of.to_datetime64(), "us")})
    scored, _ = model.score(snaps, tables["activities"])
    return pd.concat([snaps[[T.LEAD_ID]], scored], axis=1)
