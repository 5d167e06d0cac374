"""What every answer of the fake OpenAI upstream carries: OpenAI's response headers
(request id, processing time, version, rate limits) and its JSON answers."""
from __future__ import annotations

from starlette.responses import JSONResponse

from services.router.providers.openai import payloads as p

RATE_LIMIT_HEADERS = {  # as OpenAI sends them (API reference, "Rate limits")
    "x-ratelimit-limit-requests": "10000", "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-requests": "9999", "x-ratelimit-remaining-tokens": "29999945",
    "x-ratelimit-reset-requests": "6ms", "x-ratelimit-reset-tokens": "0s",
}


def openai_headers() -> dict[str, str]:
    return {"x-request-id": p.request_id(), "openai-processing-ms": "1", "openai-version": "2020-10-01",
            **RATE_LIMIT_HEADERS}


def json_response(status: int, body: p.Json, extra_headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**openai_headers(), **(extra_headers or {})})
