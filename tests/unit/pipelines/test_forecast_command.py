"""The forecast command's warning about sizes of deal the backtest found off."""

from __future__ import annotations

from rich.console import Console

from models.size_calibration import calibration_by_size
from pipelines.commands.forecast import _print_off_sizes


def test_a_size_band_the_backtest_found_over_forecast_is_named_with_its_figures() -> None:
    # 100 deals of 1,000 – 100,000, each expected to win half the time: the 20 largest
    # (the 80–95% and top bands) never won, the rest won as expected
    amount = [1000.0 * (i + 1) for i in range(100)]
    won = [i % 2 == 0 and i < 80 for i in range(100)]
    bands = calibration_by_size([0.5] * 100, won, amount, [True] * 100)
    console = Console(record=True, width=400)
    _print_off_sizes(bands, "month", console)
    text = console.export_text()
    # 80–95%: 15 deals, 7.5 expected, none won: z = −7.5 / sqrt(15 · 0.25) = −3.9
    assert (
        "the open deals of 81,000 – 95,000 (80–95%) won 0 times where their chances expected "
        "7.5 (0%, z -3.9) over all months: this forecast's part from such deals may run high"
    ) in text
    assert "(95–99%) won 0 times where their chances expected 2.0 (0%, z -2.0)" in text
    assert text.index("80–95%") < text.index("95–99%")  # most over-forecast first
    assert "50–80%" not in text and "smallest 50%" not in text  # on the mark
    assert "largest 1%" not in text  # one deal: z −1.0 is noise
    console = Console(record=True, width=400)
    _print_off_sizes({}, "month", console)
    assert console.export_text() == ""
