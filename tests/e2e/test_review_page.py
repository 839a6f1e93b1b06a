"""The managers' review page in a real headless Chromium against a real ``bentoml serve``
(and the static report of ``leadcast report``): the numbers equal the API's, the language
switch works, nothing is fetched from elsewhere, the layout holds at 1366×768."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.review.formatting import money

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "test-token-123"  # the e2e conftest's Server token
VIEWPORT = {"width": 1366, "height": 768}
TARGET = 2_000_000.0


@pytest.fixture(scope="module")
def server(review_home: Path, demo_dataset: Path, start_server: Any) -> Iterator[Any]:
    s = start_server(review_home, LEADCAST_DATA=str(demo_dataset))
    yield s
    s.stop()


@pytest.fixture
def page(browser: Any, server: Any) -> Iterator[Any]:
    """A fresh browser context that records every request the page makes."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    tab = context.new_page()
    tab.requests = []
    tab.on("request", lambda r: tab.requests.append(r.url))
    yield tab
    context.close()


def _api_forecast(server: Any, start: str, end: str, target: float | None) -> dict[str, Any]:
    r = server.post("/v1/forecast", {"period_start": start, "period_end": end, "target": target})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _value(page: Any, testid: str) -> float:
    return float(page.get_attribute(f'[data-testid="{testid}"]', "data-value"))


def _no_overflow(page: Any) -> list[str]:
    """Elements whose content is wider than their box (cut-off text), and a page wider
    than the window."""
    return list(
        page.evaluate(
            """() => {
          const bad = [];
          if (document.documentElement.scrollWidth > window.innerWidth + 1)
            bad.push('page ' + document.documentElement.scrollWidth);
          for (const el of document.querySelectorAll('main *')) {
            const style = getComputedStyle(el);
            if (style.display === 'none' || !el.getClientRects().length) continue;
            const clips = ['hidden', 'clip', 'auto', 'scroll'].includes(style.overflowX);
            if (clips && el.scrollWidth > el.clientWidth + 1)
              bad.push((el.getAttribute('data-testid') || el.tagName) + ' ' +
                       el.scrollWidth + '>' + el.clientWidth);
          }
          return bad;
        }"""
        )
    )


def test_page__shows_the_same_forecast_as_the_api(page, server) -> None:
    page.goto(f"{server.url}/ui?token={TOKEN}&target={TARGET:.0f}")
    assert "token" not in page.url  # the token left the address for an HttpOnly cookie
    start, end = page.inner_text('[data-testid="period"]').split(" – ")
    api = _api_forecast(server, start, end, TARGET)
    for key in ("p10", "p50", "p90", "mean"):
        assert _value(page, key) == pytest.approx(api[key], rel=1e-12), key
        shown = page.inner_text(f'[data-testid="{key}"]')
        assert shown == money(api[key], api["currency"], "en")
    assert _value(page, "chance") == pytest.approx(api["p_target"])
    chance = page.inner_text('[data-testid="chance"]')
    assert chance == f"{api['p_target']:.0%} chance to reach {money(TARGET, 'CNY', 'en')}"
    assert page.get_attribute('[data-testid="method"]', "data-value") == api["method"]
    assert api["method"] != "stage_weighted"  # the close-time champion serves
    coverage = page.get_attribute('[data-testid="coverage-sentence"]', "data-value")
    assert float(coverage) == pytest.approx(api["confidence"]["coverage_80"])
    assert (
        page.locator('[data-testid="health-lead-conversion"]').get_attribute("data-serving")
        == "model"
    )
    assert all(u.startswith(server.url) for u in page.requests), page.requests


def test_page__period_picker_shows_the_quarter(page, server) -> None:
    page.goto(f"{server.url}/ui?token={TOKEN}")
    page.select_option("#period-choice", "quarter")
    page.click('[data-testid="period-form"] button[type="submit"]')
    page.wait_for_load_state()
    assert "period=quarter" in page.url
    start, end = page.inner_text('[data-testid="period"]').split(" – ")
    assert (start[5:], end[5:]) in {("01-01", "03-31"), ("04-01", "06-30"),
                                    ("07-01", "09-30"), ("10-01", "12-31")}  # fmt: skip
    api = _api_forecast(server, start, end, None)
    assert _value(page, "p50") == pytest.approx(api["p50"], rel=1e-12)


def test_page__switches_to_chinese_and_remembers_it(page, server, artifacts: Path) -> None:
    page.goto(f"{server.url}/ui?token={TOKEN}&target={TARGET:.0f}")
    heading = page.locator('[data-testid="headline"] h2 span[lang="en"]')
    assert heading.is_visible() and heading.inner_text().startswith("Bookings forecast")
    page.screenshot(path=str(artifacts / "review-en-1366x768.png"))
    page.screenshot(path=str(artifacts / "review-en-full.png"), full_page=True)
    assert _no_overflow(page) == []
    page.click('[data-testid="lang-switch"]')
    zh = page.locator('[data-testid="headline"] h2 span[lang="zh"]')
    assert zh.is_visible() and zh.inner_text().startswith("成交额预测")
    assert not heading.is_visible()
    assert "的概率为" in page.inner_text('[data-testid="chance"]')
    assert "万" in page.inner_text('[data-testid="p50"]')
    page.screenshot(path=str(artifacts / "review-zh-1366x768.png"))
    page.screenshot(path=str(artifacts / "review-zh-full.png"), full_page=True)
    assert _no_overflow(page) == []
    page.reload()
    assert page.locator('[data-testid="headline"] h2 span[lang="zh"]').is_visible()


def test_page__sorts_the_drivers_by_a_column(page, server) -> None:
    page.goto(f"{server.url}/ui?token={TOKEN}")
    table = '[data-testid="drivers-expected"]'
    header = page.locator(f"{table} thead th").nth(4)  # amount
    header.click()
    header.click()  # descending
    values = page.eval_on_selector_all(
        f"{table} tbody tr td:nth-child(5)", "cells => cells.map(c => Number(c.dataset.v))"
    )
    assert len(values) >= 2 and values == sorted(values, reverse=True)


def test_page__refuses_a_missing_or_wrong_token(server) -> None:
    for url in (f"{server.url}/ui/", f"{server.url}/ui?token=wrong"):
        r = httpx.get(url, follow_redirects=True)
        assert r.status_code == 401 and "text/html" in r.headers["content-type"]
        assert "/ui?token=" in r.text  # says what to do
    r = httpx.get(f"{server.url}/ui/?period=custom&start=2026-12-01", cookies={
        "leadcast_token": TOKEN})  # fmt: skip
    assert r.status_code == 422 and "both its first and its last day" in r.text


def test_static_report__opens_offline_with_the_same_numbers(
    browser,
    server,
    review_home: Path,
    demo_dataset: Path,
    cli: Callable[[list[str], Path], tuple[int, str, str]],
    tmp_path: Path,
) -> None:
    out = tmp_path / "report.html"
    code, stdout, err = cli(
        ["report", "--data", str(demo_dataset), "--out", str(out), "--target", f"{TARGET:.0f}"],
        review_home,
    )
    assert code == 0, err
    assert "Wrote" in stdout and out.exists()
    context = browser.new_context(viewport=VIEWPORT, offline=True)
    tab = context.new_page()
    tab.goto(out.as_uri())
    start, end = tab.inner_text('[data-testid="period"]').split(" – ")
    api = _api_forecast(server, start, end, TARGET)
    for key in ("p10", "p50", "p90", "mean"):
        assert _value(tab, key) == pytest.approx(api[key], rel=1e-12), key
    assert tab.locator("#period-choice").is_disabled()
    assert tab.locator('[data-testid="reports"] [data-testid="funnel"] tbody tr').count() == 5
    context.close()
