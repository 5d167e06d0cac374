"""An OpenAI-compatible upstream's error answers, as the GatewayError the client should see.

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

from collections.abc import Mapping

import orjson

from shared.errors import GatewayError, RateLimited, UpstreamError
from shared.redact import redact_secrets


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


def error_from_response(provider: str, status: int, content: bytes, headers: Mapping[str, str]) -> GatewayError:
    detail = _upstream_detail(content)
    message = redact_secrets(detail.get("message") or f"HTTP {status}")
    if status == 429:
        return RateLimited(f"provider {provider} is rate limited: {message}", retryable=True,
                           retry_after=headers.get("retry-after"))
    if status == 404:  # a model name the deployment's provider does not know: our config, not the client
        return UpstreamError(f"provider {provider} does not know this deployment's model: {message}",
                             retryable=True, code="upstream_model_not_found")
    if status in (401, 403):
        return UpstreamError(f"provider {provider} refused the gateway's credentials", retryable=True,
                             code="upstream_auth_failed")
    if status >= 500:
        return UpstreamError(f"provider {provider} failed with HTTP {status}: {message}", retryable=True)
    error = GatewayError(message, status=status, type=detail.get("type") or "invalid_request_error",
                         param=detail.get("param"), retryable=False)
    error.code = detail.get("code")  # the upstream's, null included
    return error


def error_mid_stream(provider: str, error: object) -> GatewayError:
    detail = error if isinstance(error, dict) else {"message": str(error)}
    message = redact_secrets(str(detail.get("message") or "error"))
    code = detail.get("code")
    return UpstreamError(f"provider {provider} failed mid-stream: {message}",
                         code=str(code) if code is not None else "upstream_error", retryable=False)
