"""GatewayErrors in Anthropic's error shape, status for status."""
from __future__ import annotations

import orjson
import pytest

from services.ingress.anthropic_api.errors import error_response
from shared.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)


@pytest.mark.parametrize(("error", "kind"), [
    (InvalidRequest("bad"), "invalid_request_error"),
    (AuthenticationFailed("bad key"), "authentication_error"),
    (PermissionDenied("no"), "permission_error"),
    (NotFound("none"), "not_found_error"),
    (PayloadTooLarge("big"), "request_too_large"),
    (RateLimited("slow down"), "rate_limit_error"),
    (GatewayError("oops"), "api_error"),
    (UpstreamError("upstream"), "api_error"),
    (ServiceUnavailable("busy"), "overloaded_error"),
    (UpstreamTimeout("late"), "timeout_error"),
    (GatewayError("conflict", status=409), "invalid_request_error"),
])
def test_status_and_type(error: GatewayError, kind: str) -> None:
    response = error_response(error, "req-1")
    assert response.status_code == error.status
    assert orjson.loads(response.body) == {"type": "error", "error": {"type": kind, "message": error.message},
                                           "request_id": "req-1"}


def test_retry_after_goes_along() -> None:
    assert error_response(RateLimited("slow down", retry_after="7")).headers["retry-after"] == "7"
    assert error_response(RateLimited("slow down")).headers["retry-after"] == "1"
