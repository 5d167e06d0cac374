"""The gateway's one error type in Anthropic's error shape, for the Messages API surface.

`{"type": "error", "error": {"type", "message"}, "request_id"}` with the status the gateway
chose (the same as on the OpenAI surface); the Anthropic `type` is read from the status,
as Anthropic's API reference pairs them. `Retry-After` goes along as on the OpenAI surface.
"""
from __future__ import annotations

from typing import Literal

import orjson
from fastapi.responses import Response
from pydantic import BaseModel

from services.ingress.errors import error_headers
from shared.errors import GatewayError

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicErrorBody(BaseModel):
    """The error body of this surface, for the OpenAPI document."""

    type: Literal["error"] = "error"
    error: AnthropicErrorDetail
    request_id: str | None = None


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def error_body(error: GatewayError, request_id: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"type": "error", "error": {"type": error_type(error.status), "message": error.message}}
    if request_id:
        body["request_id"] = request_id
    return body


def error_response(error: GatewayError, request_id: str | None = None) -> Response:
    return Response(orjson.dumps(error_body(error, request_id)), status_code=error.status,
                    media_type="application/json", headers=error_headers(error))
