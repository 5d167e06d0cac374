"""Turning upstream failures into ProviderErrors with the status the client should see.

| upstream                     | client sees | next deployment? |
|------------------------------|-------------|------------------|
| connect error, read error    | 502         | yes              |
| timeout                      | 504         | yes              |
| 5xx                          | 502         | yes              |
| 429                          | 429 (+Retry-After) | yes       |
| 401 / 403 (our credential)   | 502         | yes              |
| 404 (the deployment's model) | 502         | yes              |
| 400 / 422 (the request)      | same status, upstream's message | no |
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
import httpx
import orjson

from services.router.providers.base import ProviderError
from shared.redact import redact_secrets


def _timed_out(exc: httpx.HTTPError) -> bool:
    """The aiohttp transport maps every connection error to ConnectTimeout: ask the cause."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError | asyncio.TimeoutError):
        return isinstance(cause, asyncio.TimeoutError)
    return isinstance(exc, httpx.TimeoutException)


def error_from_transport(provider: str, exc: httpx.HTTPError) -> ProviderError:
    if _timed_out(exc):
        return ProviderError(504, f"provider {provider} timed out", retryable=True, code="upstream_timeout")
    return ProviderError(502, f"provider {provider} is unreachable ({type(exc).__name__})", retryable=True,
                         code="upstream_unreachable")


def _upstream_detail(content: bytes) -> dict[str, str | None]:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return {k: (str(v) if v is not None else None) for k, v in error.items() if k in ("message", "type", "param", "code")}
    if isinstance(error, str):
        return {"message": error}
    return {}


def error_from_response(provider: str, status: int, content: bytes, headers: Mapping[str, str]) -> ProviderError:
    detail = _upstream_detail(content)
    message = redact_secrets(detail.get("message") or f"HTTP {status}")
    if status == 429:
        return ProviderError(429, f"provider {provider} is rate limited: {message}", retryable=True,
                             error_type="rate_limit_exceeded", code="rate_limit_exceeded",
                             retry_after=headers.get("retry-after"))
    if status == 404:  # a model name the deployment's provider does not know: our config, not the client
        return ProviderError(502, f"provider {provider} does not know this deployment's model: {message}",
                             retryable=True, code="upstream_model_not_found")
    if status in (401, 403):
        return ProviderError(502, f"provider {provider} refused the gateway's credentials", retryable=True,
                             code="upstream_auth_failed")
    if status >= 500:
        return ProviderError(502, f"provider {provider} failed with HTTP {status}: {message}", retryable=True,
                             code="upstream_error")
    return ProviderError(status, message, retryable=False, error_type=detail.get("type") or "invalid_request_error",
                         code=detail.get("code"), param=detail.get("param"))


def unknown_model(model: str) -> ProviderError:
    return ProviderError(404, f"The model `{model}` does not exist or you do not have access to it.",
                         retryable=False, error_type="invalid_request_error", code="model_not_found", param="model")


def invalid_router_request(errors: int) -> ProviderError:
    return ProviderError(400, f"invalid router request: {errors} validation error(s)", retryable=False,
                         error_type="invalid_request_error")
