"""Where a GatewayError becomes HTTP."""
from __future__ import annotations

import orjson

from services.ingress.errors import error_response
from shared.errors import GatewayError, RateLimited, ServiceUnavailable


def test_body_is_openai_shaped_with_the_status() -> None:
    response = error_response(GatewayError("boom", status=502, type="api_error", code="upstream_error", param="x"))
    assert response.status_code == 502
    assert orjson.loads(response.body) == {"error": {"message": "boom", "type": "api_error", "param": "x",
                                                     "code": "upstream_error"}}
    assert "retry-after" not in response.headers


def test_429_always_has_retry_after_and_keeps_the_upstreams() -> None:
    assert error_response(RateLimited("slow down")).headers["retry-after"] == "1"
    assert error_response(RateLimited("slow down", retry_after="7")).headers["retry-after"] == "7"


def test_503_carries_its_retry_after() -> None:
    assert error_response(ServiceUnavailable("later", retry_after="5")).headers["retry-after"] == "5"
