"""The OpenAPI document (`/openapi.json`): every request body the ingress validates itself
(read once as bytes, so FastAPI would not see it) and every error it answers, in OpenAI's
error shape. Routes name their body with `body_of(Model)` and their errors with
`errors(...)`; `install_openapi` puts the bodies' schemas into the document's components."""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from shared.errors import ErrorBody

REF = "#/components/schemas/{model}"

_DESCRIPTIONS = {
    400: "Invalid request: the body or a parameter is not what the API takes (`param` names it)",
    401: "Missing or unknown API key",
    403: "The key may not do this (model not allowed, scope or permission missing, address not allowed)",
    404: "Unknown model, key, org, team, user or URL (objects of another org are not found)",
    409: "The object exists already",
    413: "Request body larger than the limit",
    422: "The admin body or a parameter does not fit: `param` names the field",
    429: "Over a rate limit (`rate_limit_exceeded`) or budget (`insufficient_quota`), or upstream; with Retry-After",
    431: "Too many or too large request headers",
    502: "Every upstream deployment failed",
    503: "A part of the gateway is unavailable (with Retry-After)",
    504: "The upstream did not answer in time",
}

V1_ERRORS = (400, 401, 403, 404, 413, 429, 431, 502, 503, 504)
ADMIN_ERRORS = (400, 401, 403, 404, 409, 413, 422, 431, 503)


def errors(*statuses: int, shape: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: these statuses, each with OpenAI's error body (or `shape`)."""
    return {status: {"model": shape, "description": _DESCRIPTIONS[status]} for status in statuses}


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra=` for a route that reads its body itself (services/ingress/body.py)."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}}}


def body_schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    """The models' JSON schemas and everything they refer to, as components."""
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def install_openapi(app: FastAPI, bodies: list[type[BaseModel]]) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = doc.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            for name, schema in body_schemas(bodies).items():
                schemas.setdefault(name, schema)
            # FastAPI documents a 422 of its own shape that this API never answers: /v1's
            # validation errors are 400s, the admin API's 422s are in OpenAI's shape (declared)
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            for path in doc.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if "HTTPValidationError" in str(responses.get("422", "")):
                        responses.pop("422")
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for route, path in doc.get("paths", {}).items():
                if route.startswith(("/v1", "/admin")):
                    for operation in path.values():
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
