"""The review page's pieces: amounts in both languages, the period picker, the content
and the rendered page (on the demo history with the stage-weighted fallback)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models.bookings import data_fingerprint
from models.review import ReviewSources, render_review, resolve_period, review_content
from models.review.formatting import money, percent
from models.review.i18n import chance_sentence, coverage_sentence, size_sentences
from models.size_calibration import calibration_by_size, size_edges
from pipelines.training import load_dataset

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "currency", "lang", "shown"),
    [
        (1_234_567.0, "CNY", "en", "¥1.23M"),
        (1_234_567.0, "CNY", "zh", "¥123万"),
        (250_000_000.0, "CNY", "zh", "¥2.50亿"),
        (850.0, "USD", "en", "$850"),
        (-45_000.0, "EUR", "en", "-€45.0K"),
        (12_000.0, "XYZ", "en", "12.0K XYZ"),
        (None, "CNY", "en", "—"),
    ],
)
def test_money__groups_by_thousands_in_english_and_ten_thousands_in_chinese(
    value: float | None, currency: str, lang: Any, shown: str
) -> None:
    assert money(value, currency, lang) == shown


def test_sentences__fill_in_both_languages() -> None:
    en, zh = chance_sentence(0.623, 1_200_000, "CNY")
    assert en == "62% chance to reach ¥1.20M"
    assert zh == "达到 ¥120万 的概率为 62%"
    en, zh = coverage_sentence(26, 21, "month")
    assert "21 times (81%" in en and "26 months" in en
    assert "26 个月" in zh and "21 次" in zh
    assert percent(None) == "—"
    check = {"low_95": 0.62, "high_95": 0.92}
    en, zh = coverage_sentence(26, 21, "month", check)
    assert "between 62% and 92% (95% interval)" in en
    assert "62% 到 92%" in zh


def _off_sizes() -> dict[str, Any]:
    """A backtest's open_by_size record whose 80–95% and 95–99% bands never won (the
    other sizes won as expected) over its last 12 months."""
    amount = [1000.0 * (i + 1) for i in range(100)] + [0.0] * 10
    won = [i % 2 == 0 and i < 80 for i in range(100)] + [False] * 10
    bands = calibration_by_size([0.5] * 110, won, amount, size_edges(amount))
    return {"all": bands, "recent": bands, "recent_periods": 12}


def test_size_sentences__warn_of_each_size_the_backtest_found_off_in_both_languages() -> None:
    pairs = size_sentences(_off_sizes(), "month", "CNY")
    assert len(pairs) == 2  # 80–95% (z −3.9) and 95–99% (z −2.0); not the no-amount deals
    en, zh = pairs[0]
    assert en == (
        "Over the last 12 months, open deals of ¥81.0K–¥95.0K won 0% of what their chances "
        "expected (0 wins where 7.5 were expected): the part of this forecast they carry may "
        "run high."
    )
    assert "¥8.10万–¥9.50万" in zh and "预期 7.5 单，实际 0 单" in zh and "偏高" in zh
    assert size_sentences(None, "month", "CNY") == []


def test_resolve_period__month_and_quarter_hold_as_of_and_custom_needs_both_days() -> None:
    as_of = pd.Timestamp("2026-11-01")
    month = resolve_period("month", as_of)
    assert (month.start, month.last_day) == (pd.Timestamp("2026-11-01"), pd.Timestamp("2026-11-30"))
    quarter = resolve_period("quarter", as_of)
    assert (quarter.start, quarter.last_day) == (
        pd.Timestamp("2026-10-01"),
        pd.Timestamp("2026-12-31"),
    )
    custom = resolve_period("custom", as_of, "2026-11-15", "2026-12-14")
    assert custom.label() == "2026-11-15..2026-12-14"
    with pytest.raises(ValueError, match="both its first and its last day"):
        resolve_period("custom", as_of, "2026-11-15", None)
    with pytest.raises(ValueError, match="not valid"):
        resolve_period("custom", as_of, "2026-12-15", "2026-11-01")
    with pytest.raises(ValueError, match="choose one of month, quarter, custom"):
        resolve_period("week", as_of)


@pytest.fixture(scope="module")
def content(demo_dataset: Path) -> dict[str, Any]:
    """The page content of the demo history's coming month, with no models (fallbacks)."""
    tables, _, _, data_end, _ = load_dataset(demo_dataset)
    sources = ReviewSources(
        tables=tables,
        data_end=data_end,
        data_sha256=str(data_fingerprint(tables)["sha256"]),
        close_time=None,
        close_time_reason="no deal-close-time champion in the registry",
        conversion=None,
        registry=None,
        health=[
            {
                "kind": "lead-conversion",
                "serving": "rules",
                "version": None,
                "source": None,
                "reason": "no lead-conversion champion",
                "trained_at": None,
                "training_window": None,
            },
        ],
    )
    period = resolve_period("month", data_end)
    return review_content(sources, period=period, choice="month", target=2_000_000, draws=2000)


def test_review_content__says_the_fallback_and_carries_the_chart_quantiles(content) -> None:
    forecast = content["forecast"]
    assert forecast["method"] == "stage_weighted"
    assert forecast["fallback_reason"].startswith("no deal-close-time champion")
    assert len(forecast["quantiles"]) >= 99
    assert forecast["p10"] <= forecast["p50"] <= forecast["p90"]
    assert content["period"] == {"start": "2026-11-01", "end": "2026-11-30", "choice": "month"}
    assert content["sales"]["grades"] is None  # no conversion model: nothing to check
    assert content["sales"]["funnel"]["stages"][0]["reached"] > 0


def test_render_review__is_self_contained_and_bilingual(content) -> None:
    page = render_review(content, lang="zh")
    assert '<html lang="zh" class="lang-zh">' in page
    assert "成交额预测" in page and "Bookings forecast" in page
    assert not re.search(r"""(src|href)=["']https?://""", page)  # nothing fetched
    assert "<script src" not in page and "<link" not in page
    assert page.count("<svg") == 1  # the distribution; no backtest → no fan chart
    assert 'data-testid="no-backtest"' in page
    assert f'data-testid="p50" data-value="{content["forecast"]["p50"]}"' in page
    assert "stage-weighted rule (fallback)" in page and "阶段加权规则（后备）" in page
    assert 'data-serving="rules"' in page


def test_render_review__warns_about_a_size_of_deal_the_backtest_found_off(content) -> None:
    confidence = {
        "n_periods": 26, "coverage_80": 0.81, "coverage_50": 0.5, "accuracy": 0.9,
        "mape_p50": 0.1, "crps_skill_vs_baseline": 0.8, "baseline": None, "freq": "month",
        "first_period": "2024-09-01", "last_period": "2026-10-31", "run_id": "r1",
        "logged_at": "2026-11-01T00:00:00", "same_data": True, "periods": [],
        "coverage_check": None, "open_by_size": _off_sizes(),
    }  # fmt: skip
    page = render_review({**content, "forecast": {**content["forecast"], "confidence": confidence}})
    assert page.count('data-testid="size-warning"') == 2
    assert "open deals of ¥81.0K–¥95.0K won 0% of what their chances expected" in page
    assert "本预测中这部分可能偏高" in page
    assert 'data-testid="size-warning"' not in render_review(content)  # no backtest, no word


def test_render_review__static_report_disables_the_picker(content) -> None:
    live = render_review(content, form_action="/ui")
    static = render_review(content, static=True)
    assert 'action="/ui"' in live and "static report" not in live.lower()
    assert "run leadcast report again" in static
    assert static.count("disabled") >= 4
