"""The backtest command's table and the sentences under it."""

from __future__ import annotations

from rich.console import Console

from models.backtest import summary_metrics
from models.size_calibration import calibration_by_size, size_edges
from pipelines.commands.backtest import print_backtest

# 100 deals of 1,000 – 100,000 expected to win half the time, every other one won, and 10
# without an amount expected to win 2 in all and none won
CHANCE = [0.5] * 100 + [0.2] * 10
WON = [i % 2 == 0 for i in range(100)] + [False] * 10
AMOUNT = [1000.0 * (i + 1) for i in range(100)] + [0.0] * 10


def _rows(n: int, inside_50: int, inside_80: int) -> list[dict[str, object]]:
    return [
        {"in_50": i < inside_50, "in_80": i < inside_80, "crps": 2.0, "ape_p50": 0.1,
         "accuracy": 0.9, "pit": 0.5}
        for i in range(n)
    ]  # fmt: skip


def _summary(inside_50: int, inside_80: int) -> dict[str, object]:
    """A backtest summary of 27 periods whose model scores CRPS 2.0 and the baseline 8.0."""
    return {
        **summary_metrics(_rows(27, inside_50, inside_80)),
        "baseline": summary_metrics(_rows(27, 1, 2)) | {"crps": 8.0},
        "crps_skill_vs_baseline": 0.75,
        "rho": 0.005,
        "level": 1.0,
        "calibration_note": "fitted on earlier periods",
        "method_note": "backtest models",
        "freq": "month",
        "first_period": "2024-08-01",
        "last_period": "2026-10-31",
    }


def test_print_backtest_says_how_loosely_the_periods_pin_the_coverage() -> None:
    summary = {
        **_summary(9, 24),
        "after_calibration_warmup": summary_metrics(_rows(21, 8, 18)),
        "parts_actual": {
            "open": {"forecast": 2e9, "actual": 1.9e9, "actual_over_forecast": 0.95},
            "new": {"forecast": 1e8, "actual": 1.1e8, "actual_over_forecast": 1.1},
        },
        "open_by_size": {
            "all": calibration_by_size(CHANCE, WON, AMOUNT, size_edges(AMOUNT)),
            # the last 12 periods: only the deals of 1,000 – 40,000 and those without amount
            "recent": calibration_by_size(
                CHANCE[:40] + CHANCE[100:],
                [True] * 40 + WON[100:],
                AMOUNT[:40] + AMOUNT[100:],
                size_edges(AMOUNT),
            ),
            "recent_periods": 12,
        },
    }
    console = Console(record=True, width=200)
    print_backtest(summary, [], "run123", console=console)
    text = console.export_text()
    assert "80% intervals held 24 of 27 actuals" in text
    assert "between 72% and 96% (95% interval; binomial test against 80%: p = 0.34)" in text
    assert "50% intervals held 9 of 27 actuals" in text
    assert "CRPS 75% lower" in text and "run123" in text
    assert (
        "Deals open at each period's start booked 1,900,000,000 in all periods together: "
        "95% of their forecast mean 2,000,000,000" in text
    )
    assert "Deals created inside each period booked 110,000,000" in text and "110%" in text
    # the open deals by size, a row per band: the smallest 50 (1,000 – 50,000; 50 of the
    # 110 deal-periods) expected 25 wins and had 25; won 625,000 of 637,500 expected;
    # over the last 12 periods, 40 of them expected 20 and all won: 200%, z = 20/√10
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    cells = [c.strip() for c in rows["smallest 50%"].split("│")[2:-1]]
    assert cells == ["1.00K–50.0K", "45%", "25 / 25.0", "100%", "+0.0", "98%", "200%", "+6.3"]
    assert rows["largest 1%"].split("│")[2].strip() == "100K–100K"
    # the 10 deals without an amount: z = (0 − 2) / sqrt(10 · 0.2 · 0.8)
    cells = [c.strip() for c in rows["no amount"].split("│")[2:-1]]
    assert cells == ["—", "9%", "0 / 2.0", "0%", "-1.6", "—", "0%", "-1.6"]
    assert "last 12: won/exp" in text


def test_the_oracle_row_and_sentence_appear_only_with_an_oracle() -> None:
    base = _summary(11, 23)
    # the model's CRPS is 2.0; the oracle's 1.6: the model is 25% above it
    oracle = summary_metrics(_rows(27, 14, 22)) | {"crps": 1.6, "deal_periods_without_truth": 0}
    console = Console(record=True, width=200)
    print_backtest(base | {"oracle": oracle, "oracle_note": "true laws"}, [], "r", console)
    text = " ".join(console.export_text().split())  # the sentence wraps
    assert "oracle: each open deal's true law" in text
    assert "The model's CRPS is 25% above the oracle's." in text
    assert "the oracle held 14 of 27 actuals in its 50% intervals and 22 of 27 in its 80%" in text
    console = Console(record=True, width=200)
    print_backtest(base, [], "r", console)
    assert "oracle" not in console.export_text()
