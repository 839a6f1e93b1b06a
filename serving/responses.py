"""Typed response bodies of the hot endpoints.

BentoML serialises a pydantic return value with one ``model_dump_json``; a plain return
type (``dict``) is validated, dumped and re-serialised, and its JSON schema rebuilt, on
every response (DESIGN §9). The bodies are built with ``model_construct``: what goes in
was produced by the service itself, so it is not validated again.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ScoreResponse(BaseModel):
    """``POST /v1/leads/score``: one result per valid lead, one error per invalid field."""

    results: list[dict[str, Any]] = Field(
        description="per valid lead, in request order: index, lead_id, probability, grade, "
        "scored_by (model | rules), fallback_reason, model_version, reasons on request"
    )
    errors: list[dict[str, Any]] = Field(description="per invalid field: index, id, field, message")
    serving: dict[str, Any] = Field(description="what scored: model or rules, and why")


class ErrorResponse(BaseModel):
    """A refusal: a machine-readable code and what to do."""

    error: str
    message: str


__all__ = ["ErrorResponse", "ScoreResponse"]
