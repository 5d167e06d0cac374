"""Gemini's error answers (`{"error": {"code", "message", "status", "details"}}`) as the
GatewayError the client should see.

| upstream                                          | client sees                        | next deployment? |
|---------------------------------------------------|------------------------------------|------------------|
| 400 INVALID_ARGUMENT, input token count exceeds   | 400 `context_length_exceeded`      | no               |
| 400 INVALID_ARGUMENT / FAILED_PRECONDITION        | 400, Gemini's message              | no               |
| 400 with ErrorInfo `API_KEY_INVALID`, 401, 403    | 502 `upstream_auth_failed`         | yes              |
| 404 NOT_FOUND (the deployment's model)            | 502 `upstream_model_not_found`     | yes              |
| 429 RESOURCE_EXHAUSTED                            | 429, Retry-After from the header or RetryInfo.retryDelay | yes |
| 500 INTERNAL, 503 UNAVAILABLE, 504, other 5xx     | 502                                | yes              |

Messages name the provider, never its credential (the configured key is scrubbed too).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from shared.errors import GatewayError, InvalidRequest, RateLimited, UpstreamError
from shared.redact import redact_secrets

_TOO_LONG = re.compile(r"(?i)(input token count.*exceeds|exceeds the maximum number of tokens|too many tokens|"
                       r"context (window|length))")
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED",
                           "ACCESS_TOKEN_EXPIRED", "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "SERVICE_DISABLED"})
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _error_of(content: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(body, list) and body:  # the JSON-array framing of non-SSE streams wraps errors too
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _details(error: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [d for d in error.get("details") or () if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]


def _retry_after(error: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    if headers.get("retry-after"):
        return headers["retry-after"]
    for info in _details(error, "google.rpc.RetryInfo"):
        match = _DELAY.match(str(info.get("retryDelay") or ""))
        if match:
            return str(math.ceil(float(match.group(1))))
    return None


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return redact_secrets(text)


def error_from_response(provider: str, status: int, content: bytes, headers: Mapping[str, str],
                        secrets: tuple[str, ...] = ()) -> GatewayError:
    error = _error_of(content)
    message = _scrub(str(error.get("message") or f"HTTP {status}"), secrets)
    reasons = {str(d.get("reason")) for d in _details(error, "google.rpc.ErrorInfo")}
    if status in (401, 403) or reasons & _AUTH_REASONS:
        return UpstreamError(f"provider {provider} refused the gateway's credentials", retryable=True,
                             code="upstream_auth_failed")
    if status == 429:
        return RateLimited(f"provider {provider} is rate limited: {message}", retryable=True,
                           retry_after=_retry_after(error, headers))
    if status == 404:
        return UpstreamError(f"provider {provider} does not know this deployment's model: {message}",
                             retryable=True, code="upstream_model_not_found")
    if status >= 500:
        return UpstreamError(f"provider {provider} failed with HTTP {status}: {message}", retryable=True)
    if _TOO_LONG.search(message):
        return InvalidRequest(message, code="context_length_exceeded", param="messages")
    refused = GatewayError(message, status=status, type="invalid_request_error", retryable=False)
    refused.code = None  # as OpenAI's own invalid requests
    return refused


def error_mid_stream(provider: str, error: object, secrets: tuple[str, ...] = ()) -> GatewayError:
    detail = error if isinstance(error, dict) else {"message": str(error)}
    message = _scrub(str(detail.get("message") or "error"), secrets)
    status = detail.get("status")
    return UpstreamError(f"provider {provider} failed mid-stream: {message}",
                         code=str(status).lower() if status else "upstream_error", retryable=False)
