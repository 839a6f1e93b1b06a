"""The review page as one self-contained HTML document (inline CSS, JS and SVG charts).

``render_review(content, lang=..., static=...)`` turns :func:`models.review.content.
review_content`'s dict into HTML. ``static=True`` (``leadcast report``) disables the
period picker, which needs the service, and says how to get another period.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2

from models.review import charts, i18n
from models.review.formatting import Lang, money, number, percent
from models.sales_reports import NOTE_LABELS


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("models.review", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        S=i18n.STRINGS,
        FLAGS=i18n.FLAGS,
        money=money,
        percent=percent,
        number=number,
        stage_label=i18n.stage_label,
        source_label=i18n.source_label,
        note_labels=NOTE_LABELS,
        chance_sentence=i18n.chance_sentence,
        range_sentence=i18n.range_sentence,
        coverage_sentence=i18n.coverage_sentence,
        size_sentences=i18n.size_sentences,
        track_sentence=i18n.track_sentence,
    )
    return env


@cache
def _asset(name: str) -> str:
    return resources.files("models.review").joinpath("templates", name).read_text("utf-8")


def render_review(
    content: dict[str, Any], *, lang: Lang = "en", static: bool = False, form_action: str = ""
) -> str:
    """The page for ``content`` shown first in ``lang`` (the reader can switch)."""
    forecast = content["forecast"]
    symbol = str(content.get("currency_symbol", ""))
    distribution = charts.to_svg(
        charts.distribution_chart(
            forecast["quantiles"], target=forecast.get("target"), currency_symbol=symbol
        ),
        salt="distribution",
    )
    confidence = forecast.get("confidence") or {}
    periods = confidence.get("periods") or []
    backtest = (
        charts.to_svg(charts.backtest_chart(periods, currency_symbol=symbol), salt="backtest")
        if periods
        else ""
    )
    inside = sum(1 for p in periods if p.get("model", {}).get("in_80"))
    return (
        _environment()
        .get_template("review.html.j2")
        .render(
            content=content,
            lang=lang,
            static=static,
            form_action=form_action,
            currency=content["currency"],
            css=_asset("review.css"),
            js=_asset("review.js"),
            distribution_svg=distribution,
            backtest_svg=backtest,
            inside_80=inside,
        )
    )


__all__ = ["render_review"]
