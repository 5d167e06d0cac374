"""Where a GatewayError becomes HTTP: every error leaves the ingress in OpenAI's shape,
with its status, its own headers (a rate-limit refusal's `x-ratelimit-*`) and, for 429
and 503, `Retry-After`."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from services.ingress.validation_errors import invalid_request
from shared.errors import GatewayError, InvalidRequest, NotFound

DEFAULT_RETRY_AFTER = {429: "1"}


def error_headers(error: GatewayError) -> dict[str, str]:
    retry_after = error.retry_after or DEFAULT_RETRY_AFTER.get(error.status)
    headers = dict(error.headers)
    if retry_after:
        headers["retry-after"] = retry_after
    return headers


def error_response(error: GatewayError) -> Response:
    return Response(error.body().model_dump_json().encode(), status_code=error.status,
                    media_type="application/json", headers=error_headers(error))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(_: Request, exc: GatewayError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        """Query and path parameters FastAPI validated, told as the bodies' errors are (the
        admin API's as 422s, as its bodies' are)."""
        if not exc.errors():
            return error_response(InvalidRequest("Invalid request."))
        first = exc.errors()[0]
        first["loc"] = tuple(first["loc"][1:])  # without "query" / "path"
        error = invalid_request(first)
        if request.url.path.startswith("/admin/"):
            error = InvalidRequest(error.message, status=422, param=error.param, code=error.code)
        return error_response(error)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            err: GatewayError = NotFound("Unknown request URL. Please check the URL and method.", code="unknown_url")
        else:
            err = GatewayError(str(exc.detail), status=exc.status_code, type="invalid_request_error", code=None)
        return error_response(err)

    # anything else propagates to EdgeMiddleware, which answers an OpenAI-shaped 500
    # that still carries x-request-id
