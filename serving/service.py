"""The Leadcast HTTP service (BentoML): thin, it translates HTTP into ``models`` calls.

Run it with ``leadcast serve`` (or ``bentoml serve serving.service:Leadcast``). Endpoints:

- ``POST /v1/leads/score`` ``{"leads": [...], "reasons": false, "lang": null, "rules":
  false}`` → one result per valid lead (probability, grade, ``scored_by``,
  ``fallback_reason``, model version, reasons on request: in English and Chinese, or in
  ``lang`` — ``en`` or ``zh`` — only) and one error per invalid field (index, id, field,
  message) — a bad record never stops the others;
- ``POST /v1/leads/bant`` — the BANT rules on request, with their reasons;
- ``POST /v1/deals/outlook`` — open deals with their stage history and activities → P(win),
  P(won within 30 / 60 / 90 days), close-date quantiles and risk flags (the stage's win
  rate, said so, when no close-time model serves);
- ``POST /v1/forecast`` — the bookings forecast of a period from the history loaded with
  ``LEADCAST_DATA``, with the newest backtest as its confidence statement;
- ``POST /v1/models/reload`` — pick up newly promoted champions (the old models serve
  until the new ones are loaded and verified);
- ``GET /v1/models`` — what serves each kind (version, source, training window,
  metrics), the registry's versions with their promotion history, and the process id of
  the worker that answered (``worker_pid``: with several workers, which one says so);
- ``GET /ui`` — the managers' forecast review page (:mod:`serving.review_page`);
- BentoML's ``/livez``, ``/metrics``, ``/docs.json``; ``/readyz`` answers with JSON
  details (see :mod:`serving.guard`).

Auth, JSON-only, the body cap and ``/readyz`` are :class:`serving.guard.Guard`; the timeout
(504) and max concurrency (429) are BentoML's traffic settings. See
:mod:`serving.settings` for the environment variables.

The hot path, ``POST /v1/leads/score``, is also a direct route of the guard: after auth,
content type and body cap, the request goes straight to the endpoint's own code with its
own input model, skipping BentoML's routing, thread hop and response machinery (BentoML's
timeout, concurrency limit and metrics still wrap it). A body whose leads are all valid
and carry no activities is parsed straight into the contract's lead records; any other
body takes the general path (dicts, then the contract's validation, which names every
bad field of every lead) — the results are the same either way. The BentoML endpoint
stays: it documents the route in ``/docs.json`` and serves it should the guard not.

Start-up: ``bentoml serve`` imports this module once in its own process and once per
worker, so the models and their libraries (LightGBM, pandas, scikit-learn, MLflow) are
imported where they are used, in the workers. Each worker loads the models, then freezes
the garbage collector's view of them (``gc.freeze``: collections no longer walk the model
objects, which caused ~200 ms pauses). A reload in one worker is followed by the others:
it touches a stamp file in the cache that every worker polls
(``LEADCAST_RELOAD_POLL_SECONDS``).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import bentoml
from pydantic import Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from data_contracts.vocabulary import Lang
from models import registry as R
from serving.guard import STATE, Guard
from serving.model_store import ServedModel, load_served
from serving.responses import ErrorResponse, ScoreResponse
from serving.review_page import review_app
from serving.settings import ServiceSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from models.close_time import CloseTimeModel
    from models.conversion import ConversionModel
    from serving.lead_scoring import ScoredBatch

SETTINGS = ServiceSettings()
logger = logging.getLogger(__name__)
CONVERSION, CLOSE_TIME = R.KINDS  # "lead-conversion", "deal-close-time"


class _Holder:
    """The worker's service instance, for the mounted ``GET`` routes."""

    service: Leadcast | None = None


async def _list_models(_: Request) -> JSONResponse:
    service = _Holder.service
    if service is None:
        return JSONResponse({"error": "starting", "message": "models are loading; retry"}, 503)
    return JSONResponse(service.models_report())


models_app = Starlette(routes=[Route("/models", _list_models, methods=["GET"])])
ui_app = review_app(lambda: _Holder.service)


def _too_many(ctx: bentoml.Context, n: int) -> dict[str, Any]:
    ctx.response.status_code = 413
    return _too_many_error(n).model_dump()


def _too_many_error(n: int) -> ErrorResponse:
    return ErrorResponse(
        error="batch_too_large",
        message=f"{n} records in one request; at most {SETTINGS.max_batch} are accepted — "
        "split the batch",
    )


def _score_response(
    n_leads: int, served: ServedModel[ConversionModel], score: Callable[[], ScoredBatch]
) -> tuple[int, ScoreResponse | ErrorResponse]:
    """413 over the batch cap, else 200 with what ``score`` gives and what served it."""
    if n_leads > SETTINGS.max_batch:
        return 413, _too_many_error(n_leads)
    batch = score()
    return 200, ScoreResponse.model_construct(
        results=batch.results, errors=batch.errors, serving=served.describe()
    )


def _read_stamp(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


@bentoml.asgi_app(models_app, path="/v1")
@bentoml.asgi_app(ui_app, path="/ui")
@bentoml.service(
    name="leadcast",
    traffic={"timeout": SETTINGS.timeout_seconds, "max_concurrency": SETTINGS.max_concurrency},
    workers=SETTINGS.workers,
    logging={"access": {"enabled": SETTINGS.access_log}},
    tracing={"excluded_urls": SETTINGS.untraced_urls},
)
class Leadcast:
    """Lead scoring, deal outlooks and the forecast, each with its said fallback (see the
    module docstring)."""

    def __init__(self) -> None:
        if not SETTINGS.api_token:
            raise RuntimeError(
                "LEADCAST_API_TOKEN is not set: the service refuses to run without auth. "
                "Set it (leadcast serve generates one) and start again."
            )
        self.registry = R.RegistrySettings(home=SETTINGS.home).model_copy(
            update={"tracking_uri": R.RegistrySettings.from_env().tracking_uri}
        )
        self._lock = threading.Lock()
        self._stamp = _read_stamp(SETTINGS.reload_stamp)
        self.conversion: ServedModel[ConversionModel] = self._load()
        self.close_time: ServedModel[CloseTimeModel] = self._load_close_time()
        self.history = _load_history()
        self._publish()
        _Holder.service = self
        gc.collect()
        gc.freeze()  # the loaded models are permanent: collections stop walking them
        threading.Thread(target=self._follow_reloads, name="follow-reloads", daemon=True).start()

    def _load(self) -> ServedModel[ConversionModel]:
        from models.conversion import ConversionModel

        return load_served(
            self.registry, CONVERSION, SETTINGS.cache_dir, ConversionModel.from_bundle
        )

    def _load_close_time(self) -> ServedModel[CloseTimeModel]:
        from models.close_time import CloseTimeModel

        served: ServedModel[CloseTimeModel] = load_served(
            self.registry, CLOSE_TIME, SETTINGS.cache_dir, CloseTimeModel.from_bundle
        )
        if served.model is not None:
            served.model.meta["registered_version"] = served.version
        return served

    def _publish(self) -> None:
        STATE.details = {
            "models": {
                CONVERSION: self.conversion.describe(),
                CLOSE_TIME: self.close_time.describe(),
            },
            "history": None if self.history is None else self.history.describe(),
        }
        STATE.ready = True

    def models_report(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "serving": {
                CONVERSION: self.conversion.describe(),
                CLOSE_TIME: self.close_time.describe(),
            },
            "worker_pid": os.getpid(),
        }
        try:
            report["registry"] = {
                CONVERSION: {
                    "versions": [
                        v.model_dump(mode="json")
                        for v in R.list_versions(self.registry, CONVERSION)
                    ],
                    "promotions": [
                        d.model_dump(mode="json")
                        for d in R.promotion_history(self.registry, CONVERSION)
                    ],
                }
            }
        except Exception as exc:
            report["registry"] = {"unreachable": str(exc)}
        return report

    @bentoml.api(route="/v1/leads/score")
    def score(
        self,
        leads: list[dict[str, Any]],
        reasons: bool = False,
        rules: bool = False,
        as_of: datetime | None = None,
        lang: Lang | None = None,
        *,
        ctx: bentoml.Context,
    ) -> ScoreResponse:
        """Score up to ``LEADCAST_MAX_BATCH`` leads; ``reasons`` adds the top reasons, in
        English and Chinese (``name_en``, ``text_en``, ``name_zh``, ``text_zh``) or, with
        ``lang``, in that language only (``name``, ``text``); ``rules`` asks for the BANT
        rules instead of the model; ``as_of`` is the scoring time (default: now, UTC) —
        activities at or after it and leads created after it are refused."""
        status, body = self.score_body(leads, reasons, rules, as_of, lang)
        ctx.response.status_code = status
        # BentoML serialises any pydantic body; the annotation documents the 200 one
        return body  # type: ignore[return-value]

    def score_body(
        self,
        leads: list[dict[str, Any]],
        reasons: bool,
        rules: bool,
        as_of: datetime | None,
        lang: Lang | None = None,
    ) -> tuple[int, ScoreResponse | ErrorResponse]:
        """The status and body of a scoring request (the endpoint and its direct route)."""
        from serving.lead_scoring import score_leads

        served = self.conversion
        return _score_response(
            len(leads),
            served,
            lambda: score_leads(
                leads, served, reasons=reasons, rules_requested=rules, as_of=as_of, lang=lang
            ),
        )

    def score_validated_body(
        self, args: Any, served: ServedModel[ConversionModel]
    ) -> tuple[int, ScoreResponse | ErrorResponse]:
        """:meth:`score_body` for a body parsed by :func:`_parse_validated` with ``served``
        (every lead already a valid record of its contract)."""
        from serving.lead_scoring import score_validated_leads

        return _score_response(
            len(args.leads),
            served,
            lambda: score_validated_leads(
                args.leads, served, reasons=args.reasons, as_of=args.as_of, lang=args.lang
            ),
        )

    @bentoml.api(route="/v1/leads/bant")
    def bant_score(self, leads: list[dict[str, Any]], *, ctx: bentoml.Context) -> dict[str, Any]:
        """The BANT rule score of each lead, with one reason per factor."""
        from models import bant
        from serving.lead_scoring import score_leads

        if len(leads) > SETTINGS.max_batch:
            return _too_many(ctx, len(leads))
        batch = score_leads(leads, self.conversion, reasons=True, rules_requested=True)
        return {
            "results": batch.results,
            "errors": batch.errors,
            "config": {"calibrated": bant.load_default_config().mapping.fitted},
        }

    @bentoml.api(route="/v1/deals/outlook")
    def outlook(
        self,
        deals: list[dict[str, Any]],
        as_of: datetime | None = None,
        *,
        ctx: bentoml.Context,
    ) -> dict[str, Any]:
        """Open deals (each with its ``stage_history`` and recent ``activities``) → P(win),
        P(won within 30 / 60 / 90 days), close-date P10 / P50 / P90 and risk flags with
        their reasons; the stage's historical win rate when no close-time model serves."""
        from serving.deal_outlook import deal_outlook

        if len(deals) > SETTINGS.max_batch:
            return _too_many(ctx, len(deals))
        history = None if self.history is None else self.history.tables
        batch = deal_outlook(deals, self.close_time, history=history, as_of=as_of)
        return {
            "results": batch.results,
            "errors": batch.errors,
            "serving": self.close_time.describe(),
        }

    @bentoml.api(route="/v1/forecast")
    def forecast(
        self,
        period_start: date,
        period_end: date,
        as_of: datetime | None = None,
        target: float | None = None,
        target_count: float | None = None,
        draws: Annotated[int, Field(ge=100, le=100_000)] = 10_000,
        *,
        ctx: bentoml.Context,
    ) -> dict[str, Any]:
        """The bookings forecast of a period from the loaded history (``LEADCAST_DATA``):
        P10 / P50 / P90, P(≥ target), closed / open / new, drivers, the stage-weighted
        baseline and the newest backtest as its confidence statement. Stage-weighted, and
        ``method`` says so, when no close-time model can serve."""
        import pandas as pd

        from models.bookings import bookings_forecast
        from models.forecast import Period
        from models.forecast_inputs import ForecastWindowError

        history = self.history
        if history is None:
            ctx.response.status_code = 409
            return {
                "error": "no_history",
                "message": "the service has no CRM history loaded; start it with "
                "LEADCAST_DATA=<dataset directory> (leadcast serve --data DIR)",
            }
        try:
            period = Period.from_days(period_start, period_end)
            return bookings_forecast(
                history.tables,
                data_end=history.data_end,
                data_sha256=history.sha256,
                model=self.close_time.model,
                fallback_reason=self.close_time.reason,
                registry=self.registry,
                period=period,
                as_of=None if as_of is None else pd.Timestamp(as_of).tz_localize(None),
                target=target,
                target_count=target_count,
                draws=draws,
            )
        except (ForecastWindowError, ValueError) as exc:
            ctx.response.status_code = 422
            return {"error": "bad_period", "message": str(exc)}

    @bentoml.api(route="/v1/models/reload")
    def reload(self) -> dict[str, Any]:
        """Load the registry's current champions; the old models serve until the new ones
        are loaded and verified (a failed load keeps the model that serves). The other
        workers follow within ``LEADCAST_RELOAD_POLL_SECONDS``."""
        with self._lock:
            changed = self._reload_models()
            self._stamp = uuid.uuid4().hex
            SETTINGS.reload_stamp.parent.mkdir(parents=True, exist_ok=True)
            tmp = SETTINGS.reload_stamp.with_suffix(f".{self._stamp}")
            tmp.write_text(self._stamp, encoding="utf-8")
            tmp.replace(SETTINGS.reload_stamp)  # atomic: a reader sees the old or the new
        return {
            "changed": changed,
            "serving": {
                CONVERSION: self.conversion.describe(),
                CLOSE_TIME: self.close_time.describe(),
            },
        }

    def _follow_reloads(self) -> None:
        """Reload when another worker has (its stamp differs from the one seen here)."""
        stop = threading.Event()
        while not stop.wait(SETTINGS.reload_poll_seconds):
            stamp = _read_stamp(SETTINGS.reload_stamp)
            if stamp is None or stamp == self._stamp:
                continue
            with self._lock:
                if stamp != self._stamp:
                    self._stamp = stamp
                    self._reload_models()

    def _reload_models(self) -> dict[str, bool]:
        """Load both champions and swap them in (under ``self._lock``); which changed."""
        conversion = self._load()
        close_time = self._load_close_time()
        changed = {
            CONVERSION: (conversion.version, conversion.ready)
            != (self.conversion.version, self.conversion.ready),
            CLOSE_TIME: (close_time.version, close_time.ready)
            != (self.close_time.version, self.close_time.ready),
        }
        if conversion.ready or not self.conversion.ready:
            self.conversion = conversion
        if close_time.ready or not self.close_time.ready:
            self.close_time = close_time
        self._publish()
        gc.freeze()
        return changed


class History:
    """The CRM history loaded at start (validated rows only) for the forecast."""

    def __init__(self, path: Any) -> None:
        from models.bookings import data_fingerprint
        from pipelines.training import load_dataset  # the one validated loading path

        self.path = path
        self.tables, _, _, self.data_end, self.contract = load_dataset(path)
        self.sha256 = str(data_fingerprint(self.tables)["sha256"])

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "data_end": str(self.data_end),
            "rows": {k: len(v) for k, v in self.tables.items()},
            "quarantined_rows": self.contract.get("quarantined_rows"),
        }


def _load_history() -> History | None:
    return None if SETTINGS.data is None else History(SETTINGS.data)


_SCORE_INPUT: Any = Leadcast.apis["score"].input_spec  # type: ignore[attr-defined]


def _parse_validated(raw: bytes, served: ServedModel[ConversionModel]) -> Any | None:
    """The body parsed into ``served``'s lead records (:func:`serving.lead_scoring.
    parse_valid_body`), or None: the general path takes it (also when rules are asked
    for)."""
    from serving.lead_scoring import parse_valid_body

    args = parse_valid_body(raw, served, _SCORE_INPUT)
    return None if args is None or args.rules else args


async def _send_json(send: Any, status: int, data: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _direct_score(scope: Any, receive: Any, send: Any) -> None:
    """``POST /v1/leads/score`` without BentoML's dispatch (a direct route of
    :class:`serving.guard.Guard`): the endpoint's own input model, validation errors (400,
    as BentoML words them), scoring and body; computed on the event loop, like the bare
    ASGI reference, instead of after a hop to a thread."""
    service = _Holder.service
    if service is None:
        await _send_json(send, 503, b'{"error": "starting", "message": "models are loading"}')
        return
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    raw = b"".join(chunks) or b"{}"
    served = service.conversion
    validated = _parse_validated(raw, served)
    if validated is None:
        try:
            args = _SCORE_INPUT.model_validate_json(raw)
        except ValidationError as exc:
            error = {
                "error": f"{exc.error_count()} validation error for {exc.title}",
                "detail": exc.errors(include_context=False, include_input=False),
            }
            await _send_json(send, 400, json.dumps(error).encode())
            return
    try:
        status, body = (
            service.score_validated_body(validated, served)
            if validated is not None
            else service.score_body(args.leads, args.reasons, args.rules, args.as_of, args.lang)
        )
        data = body.model_dump_json().encode()
    except Exception:
        logger.exception("scoring failed")
        status = 500
        data = b'{"error": "An unexpected error has occurred, please check the server log."}'
    await _send_json(send, status, data)


Leadcast.add_asgi_middleware(  # type: ignore[attr-defined]
    Guard,
    token=SETTINGS.api_token,
    max_body_bytes=SETTINGS.max_body_bytes,
    direct={("POST", "/v1/leads/score"): _direct_score},
)
