"""Bedrock's error answers as the GatewayError the client should see. An HTTP error names its
exception in the `x-amzn-errortype` header (`ValidationException:http://…`) and carries
`{"message": …}`; inside a ConverseStream an event with `:message-type: exception` names it
in `:exception-type` (`throttlingException`, …).

| Bedrock                                                   | client sees                         | next deployment? |
|-----------------------------------------------------------|-------------------------------------|------------------|
| 429 ThrottlingException, 400 ServiceQuotaExceededException | 429 `rate_limit_exceeded`          | yes              |
| 429 ModelNotReadyException, 503 ServiceUnavailableException | 503 `service_unavailable`         | yes              |
| 403 AccessDenied, UnrecognizedClient, InvalidSignature, ExpiredToken | 502 `upstream_auth_failed` (*) | yes    |
| 404 ResourceNotFoundException (the deployment's model)   | 502 `upstream_model_not_found`      | yes              |
| 408 ModelTimeoutException                                  | 504 `upstream_timeout`              | yes              |
| 500 InternalServerException, 424 ModelError / ModelStreamError, other 5xx | 502 `upstream_error` | yes         |
| 400 ValidationException "input is too long" / "prompt is too long" | 400 `context_length_exceeded` | no        |
| 400 ValidationException, other 4xx                         | the same status, Bedrock's message  | no               |

(*) the message names the provider, never its credentials.
"""
from __future__ import annotations

from collections.abc import Mapping

import orjson

from shared.errors import GatewayError, RateLimited, ServiceUnavailable, UpstreamError, UpstreamTimeout
from shared.redact import redact_secrets

AUTH_ERRORS = frozenset({"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
                         "ExpiredTokenException", "IncompleteSignatureException", "MissingAuthenticationTokenException"})
TOO_LONG = ("input is too long", "prompt is too long", "too many input tokens", "context window", "context length")
# the HTTP status each exception comes with, for exceptions that arrive inside a stream
STATUS_OF_EXCEPTION = {
    "ValidationException": 400, "ServiceQuotaExceededException": 400, "AccessDeniedException": 403,
    "ResourceNotFoundException": 404, "ModelTimeoutException": 408, "ThrottlingException": 429,
    "ModelNotReadyException": 429, "ModelErrorException": 424, "ModelStreamErrorException": 424,
    "InternalServerException": 500, "ServiceUnavailableException": 503,
}


def _exception_name(value: str | None) -> str | None:
    """`ValidationException:http://internal.amazon.com/...` or `throttlingException` as `ThrottlingException`."""
    if not value:
        return None
    name = value.split(":", 1)[0].rsplit("#", 1)[-1].strip()
    return name[:1].upper() + name[1:] if name else None


def _message(content: bytes) -> tuple[str | None, str | None]:
    """(exception named in the body, message) of an error body; Nones when it is not one."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    message = body.get("message", body.get("Message"))
    kind = body.get("__type")
    return (kind if isinstance(kind, str) else None), (message if isinstance(message, str) else None)


def bedrock_error(provider: str, status: int, kind: str | None, message: str | None,
                  retry_after: str | None = None) -> GatewayError:
    text = redact_secrets(message or kind or f"HTTP {status}")
    if kind in ("ThrottlingException", "ServiceQuotaExceededException") or (status == 429 and kind != "ModelNotReadyException"):
        return RateLimited(f"provider {provider} is rate limited: {text}", retryable=True, retry_after=retry_after)
    if kind in ("ModelNotReadyException", "ServiceUnavailableException") or status == 503:
        return ServiceUnavailable(f"provider {provider} is unavailable: {text}", retryable=True, retry_after=retry_after)
    if kind in AUTH_ERRORS or status in (401, 403):
        return UpstreamError(f"provider {provider} refused the gateway's credentials", retryable=True,
                             code="upstream_auth_failed")
    if kind == "ResourceNotFoundException" or status == 404:
        return UpstreamError(f"provider {provider} does not know this deployment's model: {text}", retryable=True,
                             code="upstream_model_not_found")
    if kind == "ModelTimeoutException" or status in (408, 504):
        return UpstreamTimeout(f"provider {provider} timed out: {text}", retryable=True)
    if status >= 500 or status == 424 or kind in ("InternalServerException", "ModelErrorException",
                                                  "ModelStreamErrorException"):
        return UpstreamError(f"provider {provider} failed ({kind or f'HTTP {status}'}): {text}", retryable=True)
    if any(phrase in text.lower() for phrase in TOO_LONG):
        return GatewayError(text, status=400, type="invalid_request_error", code="context_length_exceeded",
                            param="messages", retryable=False)
    error = GatewayError(text, status=status, type="invalid_request_error", retryable=False)
    error.code = None  # as OpenAI answers most invalid requests
    return error


def error_from_response(provider: str, status: int, content: bytes, headers: Mapping[str, str]) -> GatewayError:
    body_kind, message = _message(content)
    kind = _exception_name(headers.get("x-amzn-errortype") or body_kind)
    return bedrock_error(provider, status, kind, message, headers.get("retry-after"))


def error_from_event(provider: str, headers: Mapping[str, object], payload: bytes) -> GatewayError:
    """An exception (`:message-type: exception`) or error (`:message-type: error`) inside a stream."""
    if headers.get(":message-type") == "error":
        code, text = headers.get(":error-code"), headers.get(":error-message")
        kind = _exception_name(code if isinstance(code, str) else None)
        message = text if isinstance(text, str) else None
    else:
        exception = headers.get(":exception-type")
        kind = _exception_name(exception if isinstance(exception, str) else None)
        message = _message(payload)[1]
    return bedrock_error(provider, STATUS_OF_EXCEPTION.get(kind or "", 500), kind, message)
