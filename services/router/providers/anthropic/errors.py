"""Anthropic's error answers (`{"type": "error", "error": {"type", "message"}}`, as an HTTP
status or as an `error` event mid-stream) as the GatewayError the client should see.

| Anthropic                                   | client sees                          | next deployment? |
|---------------------------------------------|--------------------------------------|------------------|
| 529 `overloaded_error`                      | 503 `service_unavailable`            | yes              |
| 429 `rate_limit_error`                      | 429 with its `Retry-After`           | yes              |
| 401 `authentication_error`, 403 `permission_error` | 502 `upstream_auth_failed` (names the provider, never the key) | yes |
| 402 `billing_error` (our account)           | 502 `upstream_billing_error`         | yes              |
| 404 `not_found_error` (the deployment's model) | 502 `upstream_model_not_found`    | yes              |
| 504 `timeout_error`                         | 504 `upstream_timeout`               | yes              |
| 500 `api_error`, other 5xx                  | 502 `upstream_error`                 | yes              |
| 400 "prompt is too long: …"                 | 400 `context_length_exceeded`        | no               |
| 400 `invalid_request_error`, 413, other 4xx | same status, Anthropic's message     | no               |
"""
from __future__ import annotations

from collections.abc import Mapping

import orjson

from shared.errors import GatewayError, RateLimited, ServiceUnavailable, UpstreamError, UpstreamTimeout
from shared.redact import redact_secrets

# the HTTP status each error type comes with, for `error` events that arrive mid-stream
STATUS_OF_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}


def _detail(content: bytes) -> tuple[str | None, str | None]:
    """(error type, message) of an Anthropic error body; Nones when it is not one."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    kind, message = error.get("type"), error.get("message")
    return (kind if isinstance(kind, str) else None), (message if isinstance(message, str) else None)


def anthropic_error(provider: str, status: int, kind: str | None, message: str | None,
                    retry_after: str | None = None) -> GatewayError:
    text = redact_secrets(message or f"HTTP {status}")
    if status == 529 or kind == "overloaded_error":
        return ServiceUnavailable(f"provider {provider} is overloaded: {text}", retryable=True, retry_after=retry_after)
    if status == 429:
        return RateLimited(f"provider {provider} is rate limited: {text}", retryable=True, retry_after=retry_after)
    if status in (401, 403):
        return UpstreamError(f"provider {provider} refused the gateway's credentials", retryable=True,
                             code="upstream_auth_failed")
    if status == 402:
        return UpstreamError(f"provider {provider} refused the gateway's account: {text}", retryable=True,
                             code="upstream_billing_error")
    if status == 404:
        return UpstreamError(f"provider {provider} does not know this deployment's model: {text}", retryable=True,
                             code="upstream_model_not_found")
    if status == 504:
        return UpstreamTimeout(f"provider {provider} timed out: {text}", retryable=True)
    if status >= 500:
        return UpstreamError(f"provider {provider} failed with HTTP {status}: {text}", retryable=True)
    if "prompt is too long" in text.lower():
        return GatewayError(text, status=400, type="invalid_request_error", code="context_length_exceeded",
                            param="messages", retryable=False)
    error = GatewayError(text, status=status, type="invalid_request_error", retryable=False)
    error.code = None  # as OpenAI answers most invalid requests
    return error


def error_from_response(provider: str, status: int, content: bytes, headers: Mapping[str, str]) -> GatewayError:
    kind, message = _detail(content)
    return anthropic_error(provider, status, kind, message, headers.get("retry-after"))


def error_from_event(provider: str, event: object) -> GatewayError:
    """An `error` event of a stream (the HTTP status was 200; the error type says what it was)."""
    error = event.get("error") if isinstance(event, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    status = STATUS_OF_TYPE.get(kind, 500) if isinstance(kind, str) else 500
    return anthropic_error(provider, status, kind if isinstance(kind, str) else None,
                           message if isinstance(message, str) else None)
