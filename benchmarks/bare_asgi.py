"""The reference for the service benchmark: the same scoring in a bare ASGI app.

Starlette + uvicorn, no BentoML, no auth middleware: ``POST /score`` with the same body
as ``/v1/leads/score`` calls the same :func:`serving.lead_scoring.score_leads` with the
same verified champion (``LEADCAST_HOME``) and the same array path (features, encoder,
path-contribution reasons), so the difference in the benchmark is the serving layer
alone. Run: ``uvicorn benchmarks.bare_asgi:app --port P``.
"""

from __future__ import annotations

import gc
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from models.conversion import ConversionModel
from models.registry import RegistrySettings
from serving.lead_scoring import score_leads
from serving.model_store import load_served

_SERVED = load_served(
    RegistrySettings.from_env(),
    "lead-conversion",
    Path(RegistrySettings.from_env().home) / "bare-asgi-cache",
    ConversionModel.from_bundle,
)
gc.collect()
gc.freeze()  # as the service does after loading its models


async def score(request: Request) -> JSONResponse:
    body = await request.json()
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
