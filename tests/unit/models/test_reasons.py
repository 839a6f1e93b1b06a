"""Reasons: the largest TreeSHAP contributions as sentences in English and Chinese."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from features.encoding import FeatureEncoder
from models.reasons import Reason, as_reasons, feature_names, top_reason_dicts

pytestmark = pytest.mark.unit


def _encoder() -> FeatureEncoder:
    enc = FeatureEncoder(
        numeric=["n_meeting_30d", "budget", "days_since_last_touch"], categorical=["source"]
    )
    enc.levels_ = {"source": ["trade_show", "website"]}
    return enc


def test_top_reasons__orders_by_contribution_and_splits_by_sign() -> None:
    values = np.array([[3.0, 500000.0, 2.0, 0.0]])
    contrib = np.array([[0.8, 0.3, -0.1, -0.5, -2.0]])  # last column: expected value
    reasons = as_reasons(top_reason_dicts(contrib, values, _encoder(), k=5))[0]
    assert [r.feature for r in reasons["positive"]] == ["n_meeting_30d", "budget"]
    assert [r.feature for r in reasons["negative"]] == ["source", "days_since_last_touch"]
    meeting = reasons["positive"][0]
    assert meeting.text_en == "3 meetings in the last 30 days raise the score"
    assert meeting.text_zh == "近30天3次会议，提升了评分"
    source = reasons["negative"][0]
    assert source.value == "trade_show"
    assert source.text_en == "Source: Trade show lowers the score"
    assert source.text_zh == "来源：展会，降低了评分"


def test_top_reasons__never_reports_a_zero_contribution_and_respects_k() -> None:
    values = np.array([[1.0, np.nan, 5.0, np.nan]])
    contrib = np.array([[0.0, 0.2, 0.1, 0.0, -1.0]])
    reasons = as_reasons(top_reason_dicts(contrib, values, _encoder(), k=1))[0]
    assert [r.feature for r in reasons["positive"]] == ["budget"]
    assert reasons["positive"][0].text_en == "Declared budget not given raises the score"
    assert reasons["negative"] == []


def test_feature_names__use_custom_field_labels() -> None:
    assert feature_names("erp_system", {"erp_system": ("ERP system", "ERP系统")}) == (
        "ERP system",
        "ERP系统",
    )


def test_top_reason_dicts__in_one_language_give_its_name_and_text_only() -> None:
    values = np.array([[3.0, 500000.0, 2.0, 0.0]])
    contrib = np.array([[0.8, 0.3, -0.1, -0.5, -2.0]])
    both = top_reason_dicts(contrib, values, _encoder(), k=5)[0]
    zh = top_reason_dicts(contrib, values, _encoder(), k=5, lang="zh")[0]
    en = top_reason_dicts(contrib, values, _encoder(), k=5, lang="en")[0]
    assert set(both["negative"][0]) == {f.name for f in fields(Reason)}
    assert zh["negative"][0] == {
        "feature": "source",
        "name": "来源",
        "value": "trade_show",
        "contribution": -0.5,
        "text": "来源：展会，降低了评分",
    }
    assert en["positive"][0]["text"] == "3 meetings in the last 30 days raise the score"
    for side in ("positive", "negative"):
        assert [r["text_en"] for r in both[side]] == [r["text"] for r in en[side]]
        assert [r["contribution"] for r in both[side]] == [r["contribution"] for r in zh[side]]
