"""The reference for the service benchmark: the same scoring in a bare ASGI app.

Starlette + uvicorn, no BentoML, no auth middleware: ``POST /score`` with the same body
as ``/v1/leads/score`` takes the same two paths as the service's direct route — a body of
valid leads parsed straight into records (:func:`serving.lead_scoring.parse_valid_body`,
:func:`~serving.lead_scoring.score_validated_leads`), any other through
:func:`~serving.lead_scoring.score_leads` — with the same verified champion
(``LEADCAST_HOME``) and the same array path (features, encoder, path-contribution
reasons), so the difference in the benchmark is the serving layer alone.
Run: ``uvicorn benchmarks.bare_asgi:app --port P``.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from data_contracts.vocabulary import Lang
from models.conversion import ConversionModel
from models.registry import RegistrySettings
from serving.lead_scoring import parse_valid_body, score_leads, score_validated_leads
from serving.model_store import load_served

_SERVED = load_served(
    RegistrySettings.from_env(),
    "lead-conversion",
    Path(RegistrySettings.from_env().home) / "bare-asgi-cache",
    ConversionModel.from_bundle,
)
gc.collect()
gc.freeze()  # as the service does after loading its models


class _Options(BaseModel):
    reasons: bool = False
    lang: Lang | None = None


async def score(request: Request) -> JSONResponse:
    raw = await request.body()
    valid = parse_valid_body(raw, _SERVED, _Options)  # the service's fast path, as there
    if valid is not None:
        batch = score_validated_leads(valid.leads, _SERVED, reasons=valid.reasons, lang=valid.lang)
    else:
        body = json.loads(raw)
        batch = score_leads(
            body["leads"],
            _SERVED,
            reasons=bool(body.get("reasons", False)),
            lang=body.get("lang"),
        )
    return JSONResponse({"results": batch.results, "errors": batch.errors})


async def ready(_: Request) -> JSONResponse:
    return JSONResponse({"ready": True})


app = Starlette(
    routes=[Route("/score", score, methods=["POST"]), Route("/readyz", ready, methods=["GET"])]
)
