"""``GET /ui``: the managers' forecast review page, served by the service.

Query: ``period`` (``month`` | ``quarter`` | ``custom``), ``start`` and ``end`` (custom,
YYYY-MM-DD), ``target`` (a number ≥ 0), ``lang`` (``en`` | ``zh``). The page is
:func:`models.review.render_review` of :func:`models.review.review_content` — the same
forecast as ``POST /v1/forecast`` for the same period and target — rendered in a worker
thread. Auth is the guard's (bearer header, or the token once in the address, then a
cookie). The sales reports are cached per (data, as_of, conversion model version).
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

_SALES_CACHE: dict[tuple[str, str, Any], dict[str, Any]] = {}
_SALES_LOCK = threading.Lock()


class PageError(ValueError):
    """A request the page cannot answer, with the HTTP status to answer it with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_page(status: int, message: str) -> str:
    """A small page that says what went wrong and what to do (in the message)."""
    return (
        "<!doctype html><html lang='en'><meta charset='utf-8'>"
        f"<title>Leadcast review: error {status}</title>"
        "<body style='font-family:sans-serif;max-width:46em;margin:3em auto'>"
        f"<h1>The review page could not be shown ({status})</h1>"
        f"<p data-testid='error'>{html.escape(message)}</p>"
        "<p><a href='/ui'>Back to this month's review</a> · "
        "<a href='/ui?lang=zh'>返回本月预测复盘</a></p></body></html>"
    )


def parse_target(text: str | None) -> float | None:
    """The ``target`` query value: empty → None; else a finite number ≥ 0."""
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise PageError(
            422, f"target {text!r} is not a number; give an amount like 1200000"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise PageError(422, f"target {text!r} must be a finite amount of at least 0")
    return value


def sales_for(service: Any, as_of: Any) -> dict[str, Any]:
    """The sales reports of the loaded history at ``as_of``, cached per model version."""
    from models.review.content import sales_content

    conversion = service.conversion
    key = (service.history.sha256, str(as_of), conversion.version if conversion.ready else None)
    with _SALES_LOCK:
        if key not in _SALES_CACHE:
            _SALES_CACHE.clear()  # one entry: the history and as_of rarely change
            _SALES_CACHE[key] = sales_content(service.history.tables, as_of, conversion.model)
        return _SALES_CACHE[key]


def render_page(service: Any, query: dict[str, str]) -> str:
    """The page for the query (raises :class:`PageError` with a status and a message)."""
    from models.review import ReviewSources, render_review, resolve_period, review_content

    history = service.history
    if history is None:
        raise PageError(
            409,
            "the service has no CRM history loaded, so there is nothing to forecast; start "
            "it with LEADCAST_DATA=<dataset directory> (leadcast serve --data DIR)",
        )
    lang = query.get("lang", "en")
    if lang not in ("en", "zh"):
        raise PageError(422, f"lang {lang!r} is not offered; use en or zh")
    choice = query.get("period", "month")
    target = parse_target(query.get("target"))
    try:
        period = resolve_period(choice, history.data_end, query.get("start"), query.get("end"))
    except ValueError as exc:
        raise PageError(422, str(exc)) from exc
    close_time = service.close_time
    sources = ReviewSources(
        tables=history.tables,
        data_end=history.data_end,
        data_sha256=history.sha256,
        close_time=close_time.model,
        close_time_reason=close_time.reason,
        conversion=service.conversion.model,
        registry=service.registry,
        health=[service.conversion.describe(), close_time.describe()],
    )
    try:
        content = review_content(
            sources,
            period=period,
            choice=choice,
            target=target,
            sales=sales_for(service, history.data_end),
        )
    except ValueError as exc:
        raise PageError(422, str(exc)) from exc
    return render_review(content, lang=lang, form_action="/ui")  # type: ignore[arg-type]


def review_app(get_service: Callable[[], Any]) -> Starlette:
    """The Starlette app mounted at ``/ui``; ``get_service`` returns the worker's service
    instance (``None`` while it loads)."""

    async def page(request: Request) -> HTMLResponse:
        service = get_service()
        if service is None:
            return HTMLResponse(error_page(503, "the models are still loading; retry"), 503)
        try:
            body = await run_in_threadpool(render_page, service, dict(request.query_params))
        except PageError as exc:
            return HTMLResponse(error_page(exc.status, str(exc)), exc.status)
        return HTMLResponse(body, headers={"cache-control": "no-store"})

    return Starlette(routes=[Route("/", page, methods=["GET"])])


__all__ = ["PageError", "error_page", "parse_target", "render_page", "review_app"]
