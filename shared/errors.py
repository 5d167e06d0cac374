"""The gateway's one error type, and OpenAI's error body.

`GatewayError` is raised anywhere — ingress, guardrails, router, provider adapters — and
carries everything the client will see: the HTTP status, OpenAI's `type`, `code` and
`param`, the message, and `Retry-After`; plus `retryable`, which tells the router to try
the model's next deployment. It becomes HTTP in one place (services/ingress/errors.py) and
an error frame on the bus in one place (shared/protocol.py). Its text is redacted
(shared/redact.py) when it is made and again when it becomes a body or a frame, so an
upstream that echoes a credential in its error never gets it to the client, an event or a
log line.
"""
from __future__ import annotations

from pydantic import BaseModel

from shared.redact import redact_secrets


def _redacted(text: str | None) -> str | None:
    return redact_secrets(text) if text else text


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class WireError(BaseModel):
    """A GatewayError as it crosses the bus (the body of an error frame)."""

    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    retryable: bool = False
    retry_after: str | None = None


class GatewayError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str | None = "internal_error"
    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None, type: str | None = None,
                 code: str | None = None, param: str | None = None, retryable: bool | None = None,
                 retry_after: str | None = None, headers: dict[str, str] | None = None) -> None:
        message = redact_secrets(message)
        super().__init__(message)
        self.message = message
        self.param = _redacted(param)
        self.retry_after = retry_after
        # response headers the client gets with this error at the ingress (e.g. a refusal's
        # x-ratelimit-*); they do not travel in error frames
        self.headers = headers or {}
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable

    def body(self) -> ErrorBody:
        """What the client reads (the one error-to-HTTP mapping, and SSE error events)."""
        return ErrorBody(error=ErrorDetail(message=redact_secrets(self.message), type=redact_secrets(self.type),
                                           param=_redacted(self.param), code=_redacted(self.code)))

    def to_wire(self) -> WireError:
        """The body of an error frame (shared/protocol.py sends it)."""
        return WireError(status=self.status, message=redact_secrets(self.message), type=redact_secrets(self.type),
                         code=_redacted(self.code), param=_redacted(self.param), retryable=self.retryable,
                         retry_after=self.retry_after)

    @classmethod
    def from_wire(cls, wire: WireError) -> GatewayError:
        return cls(wire.message, status=wire.status, type=wire.type, code=wire.code, param=wire.param,
                   retryable=wire.retryable, retry_after=wire.retry_after)

    def __repr__(self) -> str:
        return redact_secrets(f"{type(self).__name__}({self.status}, {self.code!r}, {self.message!r})")


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "invalid_request_error"
    code = "model_not_allowed"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class Conflict(GatewayError):
    """The object exists already (an admin create with a taken id)."""

    status = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class HeadersTooLarge(GatewayError):
    status = 431
    type = "invalid_request_error"
    code = "request_headers_too_large"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_exceeded"
    code = "rate_limit_exceeded"


class InsufficientQuota(GatewayError):
    """A budget on the key's path cannot hold the request's worst-case cost (OpenAI's answer
    for exhausted quota)."""

    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class ClientClosed(GatewayError):
    """The client went away (nginx's 499): only ever recorded, never sent."""

    status = 499
    type = "api_error"
    code = "client_closed"


class UpstreamError(GatewayError):
    status = 502
    type = "api_error"
    code = "upstream_error"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "api_error"
    code = "service_unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "api_error"
    code = "upstream_timeout"


class KeyStoreUnavailable(ServiceUnavailable):
    """Postgres (keys, the admin API) is unreachable or stalled: never a 401, never a hang."""

    code = "key_store_unavailable"


class BusUnavailable(ServiceUnavailable):
    """The NATS connection is down: the ingress answers at once instead of waiting for it."""

    code = "bus_unavailable"


class LimitsUnavailable(ServiceUnavailable):
    """The shared state of rate limits or budgets (NATS KV) is unreachable and that check is
    set to fail closed (JETGATE_LIMITS__*_ON_KV_FAILURE)."""

    code = "limits_unavailable"
