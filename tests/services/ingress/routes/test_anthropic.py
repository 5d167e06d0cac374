"""The Messages API routes answer every failure in Anthropic's shape, with the request id."""
from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI

from services.ingress.edge import EdgeMiddleware
from services.ingress.routes.anthropic import AnthropicRoute
from shared.errors import RateLimited


def _app() -> FastAPI:
    router = APIRouter(route_class=AnthropicRoute)

    @router.post("/limited")
    async def limited() -> dict[str, str]:
        raise RateLimited("Slow down.", retry_after="3")

    @router.post("/broken")
    async def broken() -> dict[str, str]:
        raise RuntimeError("a bug with a secret sk-live-123 in it")

    @router.post("/fine")
    async def fine() -> dict[str, str]:
        return {"ok": "yes"}

    app = FastAPI()
    app.add_middleware(EdgeMiddleware)
    app.include_router(router)
    return app


async def test_errors_and_request_ids() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        limited = await client.post("/limited", headers={"x-request-id": "req-abc"})
        broken = await client.post("/broken")
        fine = await client.post("/fine")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert limited.json() == {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down."},
                              "request_id": "req-abc"}
    assert limited.headers["request-id"] == limited.headers["x-request-id"] == "req-abc"
    assert broken.status_code == 500 and broken.json()["error"]["type"] == "api_error"
    assert "sk-live" not in broken.text and broken.headers["request-id"] == broken.headers["x-request-id"]
    assert fine.json() == {"ok": "yes"} and fine.headers["request-id"] == fine.headers["x-request-id"]
