"""Amounts, shares and dates as the review page shows them, in English or Chinese.

English groups large amounts by thousands (``¥1.23M``), Chinese by ten-thousands
(``¥123.4万``, ``¥1.23亿``), as each language's readers count. Amounts are never converted:
the currency is the data's.
"""

from __future__ import annotations

import math
from typing import Final

from data_contracts.vocabulary import Lang

LANGS: Final[tuple[Lang, ...]] = ("en", "zh")

#: currency symbols for the codes the page knows; others are written as their ISO code
SYMBOLS: Final[dict[str, str]] = {
    "CNY": "¥",
    "JPY": "¥",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "BRL": "R$",
    "INR": "₹",
    "KRW": "₩",
    "HKD": "HK$",
    "TWD": "NT$",
    "SGD": "S$",
    "AUD": "A$",
    "CAD": "C$",
}

_EN_STEPS: Final = ((1e9, "B"), (1e6, "M"), (1e3, "K"))
_ZH_STEPS: Final = ((1e8, "亿"), (1e4, "万"))


def _compact(value: float, lang: Lang) -> str:
    steps = _ZH_STEPS if lang == "zh" else _EN_STEPS
    size = abs(value)
    for unit, suffix in steps:
        if size >= unit:
            scaled = value / unit
            digits = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
            return f"{scaled:,.{digits}f}{suffix}"
    return f"{value:,.0f}"


def money(value: float | None, currency: str, lang: Lang = "en") -> str:
    """``value`` in ``currency`` (an ISO 4217 code) in compact form; ``—`` when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    body = _compact(float(value), lang)
    sign = "-" if body.startswith("-") else ""
    body = body.lstrip("-")
    symbol = SYMBOLS.get(currency.upper()) if currency else None
    if symbol:
        return f"{sign}{symbol}{body}"
    return f"{sign}{body} {currency}".strip()


def percent(share: float | None, digits: int = 0) -> str:
    """A share in [0, 1] as a percentage (``0.623`` → ``62%``); ``—`` when unknown."""
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return "—"
    return f"{100 * float(share):.{digits}f}%"


def number(value: float | None, digits: int = 0) -> str:
    """A plain number with thousands separators; ``—`` when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):,.{digits}f}"


__all__ = ["LANGS", "SYMBOLS", "Lang", "money", "number", "percent"]
