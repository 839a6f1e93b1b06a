"""The OpenAPI document as the service really answers (``/docs.json``).

BentoML documents its 400 body's ``detail`` as a string but sends pydantic's list of
errors there; and the responses of :mod:`serving.guard` (401, 413, 415) are not in its
document. :func:`patch_openapi` fixes the first and adds the second, so that clients and
schema-driven tests (schemathesis) see the truth.
"""

from __future__ import annotations

import copy
from typing import Any, Final

ERROR_SCHEMA: Final = "LeadcastError"
GUARD_RESPONSES: Final = {
    "401": "Missing or wrong bearer token (Authorization: Bearer <LEADCAST_API_TOKEN>)",
    "413": "Request body over LEADCAST_MAX_BODY_BYTES, or more records than LEADCAST_MAX_BATCH",
    "415": "Content type other than application/json",
}
FORECAST_RESPONSES: Final = {
    "409": "No CRM history loaded: start the service with LEADCAST_DATA",
    "422": "The period cannot be forecast (ends before as_of, or beyond the model horizon)",
}


def patch_openapi(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of BentoML's OpenAPI ``doc`` with the fixes above."""
    out = copy.deepcopy(doc)
    schemas = out.setdefault("components", {}).setdefault("schemas", {})
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):
        detail = schemas.get(name, {}).get("properties", {}).get("detail")
        if detail is not None:
            detail.pop("type", None)
            detail["anyOf"] = [
                {"type": "string"},
                {"type": "array", "items": {"type": "object"}},
            ]
    schemas[ERROR_SCHEMA] = {
        "type": "object",
        "title": ERROR_SCHEMA,
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "machine-readable code"},
            "message": {"type": "string", "description": "what went wrong and what to do"},
        },
    }
    ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
    for path, methods in out.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            extra = FORECAST_RESPONSES if path == "/v1/forecast" else {}
            for code, text in {**GUARD_RESPONSES, **extra}.items():
                responses.setdefault(
                    code, {"description": text, "content": {"application/json": {"schema": ref}}}
                )
    schemes = out["components"].setdefault("securitySchemes", {})
    schemes["bearer"] = {"type": "http", "scheme": "bearer"}
    out["security"] = [{"bearer": []}]
    return out


__all__ = ["patch_openapi"]
