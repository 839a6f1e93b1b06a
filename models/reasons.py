"""Reasons for a lead score: LightGBM's own TreeSHAP contributions, as readable sentences.

``top_reason_dicts`` takes the per-feature contributions (log-odds, from
``Booster.predict(X, pred_contrib=True)``) and the raw feature values, and returns the
top positive and negative ones with the feature's readable name, its value and one
sentence in English and Simplified Chinese, e.g. "3 meetings in the last 30 days raise the
score" / "近30天3次会议，提升了评分".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from data_contracts import vocabulary as V
from data_contracts.vocabulary import Lang
from features.encoding import FeatureEncoder
from features.lead_features import ENGAGEMENT_TYPES

#: count nouns per engagement type: (singular en, plural en, zh measure + noun)
_TOUCH_NOUNS: dict[str, tuple[str, str, str]] = {
    "email_sent": ("email sent", "emails sent", "封邮件发送"),
    "email_open": ("email open", "email opens", "次邮件打开"),
    "email_click": ("email click", "email clicks", "次邮件点击"),
    "web_visit": ("website visit", "website visits", "次官网访问"),
    "form_submit": ("form submitted", "forms submitted", "次表单提交"),
    "wechat_message": ("WeChat message", "WeChat messages", "条微信沟通"),
    "call": ("call", "calls", "次电话"),
    "meeting": ("meeting", "meetings", "次会议"),
    "demo": ("demo", "demos", "次产品演示"),
    "quote_sent": ("quote sent", "quotes sent", "次报价"),
    "touches": ("touch", "touches", "次互动"),
}

_CATEGORY_VOCAB: dict[str, V.Labels] = {
    "source": V.SOURCES,
    "industry": V.INDUSTRIES,
    "company_size": V.COMPANY_SIZES,
    "seniority": V.SENIORITIES,
    "authority": V.AUTHORITIES,
    "need": V.NEEDS,
    "timeline": V.TIMELINES,
}

_FIELD_NAMES: dict[str, tuple[str, str]] = {
    "source": ("Source", "来源"),
    "industry": ("Industry", "行业"),
    "region": ("Region", "地区"),
    "company_size": ("Company size", "公司规模"),
    "seniority": ("Seniority", "职级"),
    "authority": ("Authority", "决策权"),
    "need": ("Need", "需求"),
    "timeline": ("Timeline", "采购时间"),
    "budget": ("Declared budget", "预算"),
    "days_since_created": ("Days since created", "创建天数"),
    "n_touches_total": ("Touches so far", "累计互动"),
    "days_since_last_touch": ("Days since last touch", "距上次互动天数"),
    "days_since_first_touch": ("Days since first touch", "距首次互动天数"),
    "touch_velocity": ("Engagement trend", "互动趋势"),
    "owner_matured_leads": ("Owner's past leads", "负责人历史线索数"),
    "owner_conversion_rate": ("Owner's conversion record", "负责人历史转化率"),
}

_COUNT = re.compile(r"^n_(?P<type>[a-z_]+)_(?P<window>\d+)d$")


@dataclass(frozen=True)
class Reason:
    """One contribution to a score, in log-odds, with a sentence in both languages."""

    feature: str
    name_en: str
    name_zh: str
    value: Any
    contribution: float
    text_en: str
    text_zh: str


def feature_names(
    feature: str, labels: dict[str, tuple[str, str]] | None = None
) -> tuple[str, str]:
    """Readable (en, zh) name of a feature; custom fields take theirs from ``labels``."""
    if labels and feature in labels:
        return labels[feature]
    if feature in _FIELD_NAMES:
        return _FIELD_NAMES[feature]
    match = _COUNT.match(feature)
    if match:
        kind = match["type"]
        noun = _TOUCH_NOUNS.get(kind if kind in ENGAGEMENT_TYPES else "touches")
        window = match["window"]
        if noun is not None:
            return f"{noun[1].capitalize()} in the last {window} days", f"近{window}天{noun[2][1:]}"
    return feature.replace("_", " ").capitalize(), feature


@lru_cache(maxsize=8192)  # counts, levels and rounded days repeat across leads
def _sentence(feature: str, value: Any, raises: bool, names: tuple[str, str]) -> tuple[str, str]:
    verb_en = "raises the score" if raises else "lowers the score"
    verb_en_pl = "raise the score" if raises else "lower the score"
    verb_zh = "提升了评分" if raises else "降低了评分"
    match = _COUNT.match(feature)
    if match and value is not None and not _isnan(value):
        kind = match["type"] if match["type"] in ENGAGEMENT_TYPES else "touches"
        singular, plural, zh_noun = _TOUCH_NOUNS[kind]
        n = int(value)
        window = match["window"]
        if n == 0:
            return (
                f"No {plural} in the last {window} days {verb_en_pl}",
                f"近{window}天没有{zh_noun[1:]}，{verb_zh}",
            )
        noun = singular if n == 1 else plural
        verb = verb_en if n == 1 else verb_en_pl
        return (
            f"{n} {noun} in the last {window} days {verb}",
            f"近{window}天{n}{zh_noun}，{verb_zh}",
        )
    name_en, name_zh = names
    if value is None or _isnan(value):
        return f"{name_en} not given {verb_en}", f"{name_zh}未填写，{verb_zh}"
    vocab = _CATEGORY_VOCAB.get(feature)
    if vocab is not None:
        return (
            f"{name_en}: {V.label(vocab, str(value), 'en')} {verb_en}",
            f"{name_zh}：{V.label(vocab, str(value), 'zh')}，{verb_zh}",
        )
    if isinstance(value, str):
        return f"{name_en}: {value} {verb_en}", f"{name_zh}：{value}，{verb_zh}"
    if feature == "owner_conversion_rate":
        pct = f"{100 * float(value):.0f}%"
        return f"{name_en} of {pct} {verb_en}", f"{name_zh}{pct}，{verb_zh}"
    if feature.startswith("days_since"):
        days = f"{float(value):.0f}"
        return f"{name_en}: {days} {verb_en}", f"{name_zh}：{days}天，{verb_zh}"
    shown = f"{float(value):,.0f}" if abs(float(value)) >= 100 else f"{float(value):.3g}"
    return f"{name_en}: {shown} {verb_en}", f"{name_zh}：{shown}，{verb_zh}"


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def top_reason_dicts(
    contributions: np.ndarray,
    values: np.ndarray,
    encoder: FeatureEncoder,
    *,
    k: int = 5,
    labels: dict[str, tuple[str, str]] | None = None,
    lang: Lang | None = None,
) -> list[dict[str, list[dict[str, Any]]]]:
    """Per row: the ``k`` largest positive and ``k`` most negative contributions, each as
    a JSON-ready dict with the fields of :class:`Reason` (what the service returns); with
    ``lang`` (``en`` or ``zh``) only that language's, as ``name`` and ``text``.

    ``contributions``: ``(rows, features + 1)`` in log-odds, like ``pred_contrib=True``'s
    (the last column, the expected value, is ignored). ``values``: the encoded
    ``(rows, features)`` matrix; categorical codes are decoded back to their level for
    display. Zero contributions are never reported as reasons. A reason's text depends on
    its feature, value and sign only, so each is built once per call and reused.
    """
    names = encoder.feature_names
    shown = [feature_names(n, labels) for n in names]
    categorical = set(encoder.categorical)
    levels = [encoder.levels_[n] if n in categorical else None for n in names]
    contrib = contributions[:, : len(names)]
    order = np.argsort(-contrib, axis=1, kind="stable")
    top = order[:, :k]
    bottom = order[:, ::-1][:, :k]
    top_c = np.take_along_axis(contrib, top, axis=1).tolist()
    bottom_c = np.take_along_axis(contrib, bottom, axis=1).tolist()
    top_v = np.take_along_axis(values, top, axis=1).tolist()
    bottom_v = np.take_along_axis(values, bottom, axis=1).tolist()
    top, bottom = top.tolist(), bottom.tolist()
    made: dict[tuple[int, Any, bool], tuple[str, str, str, Any, str, str]] = {}

    def parts(j: int, raw: float, raises: bool) -> tuple[str, str, str, Any, str, str]:
        missing = math.isnan(raw)
        key = (j, None if missing else raw, raises)
        found = made.get(key)
        if found is None:
            level = levels[j]
            value: Any = None if missing else (raw if level is None else level[int(raw)])
            text_en, text_zh = _sentence(names[j], value, raises, shown[j])
            found = made[key] = (names[j], *shown[j], value, text_en, text_zh)
        return found

    zh = lang == "zh"

    def reason(j: int, raw: float, contribution: float) -> dict[str, Any]:
        feature, name_en, name_zh, value, text_en, text_zh = parts(j, raw, contribution > 0)
        if lang is None:
            return {
                "feature": feature,
                "name_en": name_en,
                "name_zh": name_zh,
                "value": value,
                "contribution": contribution,
                "text_en": text_en,
                "text_zh": text_zh,
            }
        return {
            "feature": feature,
            "name": name_zh if zh else name_en,
            "value": value,
            "contribution": contribution,
            "text": text_zh if zh else text_en,
        }

    out: list[dict[str, list[dict[str, Any]]]] = []
    for i in range(contrib.shape[0]):
        pos = [reason(j, v, c) for j, v, c in zip(top[i], top_v[i], top_c[i], strict=True) if c > 0]
        neg = [
            reason(j, v, c)
            for j, v, c in zip(bottom[i], bottom_v[i], bottom_c[i], strict=True)
            if c < 0
        ]
        out.append({"positive": pos, "negative": neg})
    return out


def as_reasons(rows: list[dict[str, list[dict[str, Any]]]]) -> list[dict[str, list[Reason]]]:
    """:func:`top_reason_dicts`' rows (both languages) as :class:`Reason` objects, for
    offline use."""
    return [{side: [Reason(**r) for r in items] for side, items in row.items()} for row in rows]
