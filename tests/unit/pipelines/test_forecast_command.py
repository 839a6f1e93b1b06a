"""The forecast command's warning about sizes of deal the backtest found off."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from models.size_calibration import calibration_by_size, size_edges
from pipelines.commands.forecast import _print_off_sizes


def _confidence(same_data: bool = True) -> dict[str, Any]:
    # 100 deals of 1,000 – 100,000, each expected to win half the time: the 20 largest
    # (the 80–95%, 95–99% and top bands) never won, the rest won as expected; 10 without
    # an amount expected 5 wins and had none
    amount = [1000.0 * (i + 1) for i in range(100)] + [0.0] * 10
    won = [i % 2 == 0 and i < 80 for i in range(100)] + [False] * 10
    bands = calibration_by_size([0.5] * 110, won, amount, size_edges(amount))
    return {
        "freq": "month",
        "same_data": same_data,
        "open_by_size": {"all": {}, "recent": bands, "recent_periods": 12},
    }


def _printed(conf: dict[str, Any]) -> str:
    console = Console(record=True, width=400)
    _print_off_sizes(conf, console)
    return console.export_text()


def test_a_size_band_the_backtest_found_over_forecast_is_named_with_its_figures() -> None:
    text = _printed(_confidence())
    # 80–95%: 15 deals, 7.5 expected, none won: z = −7.5 / sqrt(15 · 0.25) = −3.9
    assert (
        "Over the last 12 backtested months, open deals of 81,000 – 95,000 (80–95% by amount) "
        "had 0 wins where their chances expected 7.5 (0%, z -3.9). The part of this forecast "
        "that such deals carry may run high: read it at about 0% of its expected value"
    ) in text
    assert "(95–99% by amount) had 0 wins where their chances expected 2.0 (0%, z -2.0)" in text
    assert text.index("80–95%") < text.index("95–99%")  # most over-forecast first
    assert "50–80%" not in text and "smallest 50%" not in text  # on the mark
    assert "largest 1%" not in text  # one deal: z −1.0 is noise
    # no amount: z = −5 / sqrt(2.5) = −3.2, but they add nothing to the bookings
    assert "no amount" not in text and "without" not in text


def test_the_warning_says_when_the_backtest_ran_on_other_data_and_is_quiet_without_one() -> None:
    assert "months (a backtest on other data), open deals" in _printed(_confidence(False))
    assert _printed({"freq": "month", "same_data": True}) == ""
