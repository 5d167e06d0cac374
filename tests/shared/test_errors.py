"""The one error type: OpenAI's body, and everything that crosses the bus."""
from __future__ import annotations

import pytest

from shared.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)


@pytest.mark.parametrize(("error", "status", "type_", "code"), [
    (InvalidRequest("x"), 400, "invalid_request_error", "invalid_request"),
    (AuthenticationFailed("x"), 401, "invalid_request_error", "invalid_api_key"),
    (PermissionDenied("x"), 403, "invalid_request_error", "model_not_allowed"),
    (NotFound("x"), 404, "invalid_request_error", "model_not_found"),
    (RateLimited("x"), 429, "rate_limit_exceeded", "rate_limit_exceeded"),
    (UpstreamError("x"), 502, "api_error", "upstream_error"),
    (ServiceUnavailable("x"), 503, "api_error", "service_unavailable"),
    (UpstreamTimeout("x"), 504, "api_error", "upstream_timeout"),
    (GatewayError("x"), 500, "api_error", "internal_error"),
])
def test_each_kind_has_openais_status_type_and_code(error: GatewayError, status: int, type_: str, code: str) -> None:
    assert (error.status, error.type, error.code) == (status, type_, code)
    assert error.body().model_dump() == {"error": {"message": "x", "type": type_, "param": None, "code": code}}
    assert not error.retryable and error.retry_after is None


def test_every_field_can_be_set_and_survives_the_wire() -> None:
    error = UpstreamError("provider down", code="upstream_unreachable", param="model", retryable=True, retry_after="2")
    wire = error.to_wire()
    assert GatewayError.from_wire(wire).to_wire() == wire
    assert (wire.status, wire.code, wire.retryable, wire.retry_after) == (502, "upstream_unreachable", True, "2")


def test_setting_a_field_on_one_error_leaves_the_class_alone() -> None:
    InvalidRequest("x", code="guardrail_blocked", status=422)
    assert (InvalidRequest("y").code, InvalidRequest("y").status) == ("invalid_request", 400)


def test_a_secret_in_an_error_reaches_neither_the_body_nor_the_wire() -> None:
    import secrets

    from shared.secrets import KNOWN_SECRETS

    key = "echoed-" + secrets.token_urlsafe(16)
    KNOWN_SECRETS.add(key)
    error = GatewayError(f"upstream said: bad key {key}", status=400, param=f"messages {key}")
    error.code = f"code-{key}"  # set after the fact, as an adapter copies the upstream's
    for text in (error.message, str(error), repr(error), error.body().model_dump_json(),
                 error.to_wire().model_dump_json(), GatewayError.from_wire(error.to_wire()).body().model_dump_json()):
        assert key not in text
    assert error.body().error.message == "upstream said: bad key ***"
