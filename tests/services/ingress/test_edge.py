"""The ASGI wrapper around every request: x-request-id, metrics, the last-resort 500."""
from __future__ import annotations

import httpx
import orjson
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from services.ingress.edge import EdgeMiddleware


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.scope["state"]["request_id"])


async def broken(request: Request) -> PlainTextResponse:
    raise RuntimeError("bug")


def client() -> httpx.AsyncClient:
    # as in the ingress: the edge inside the app's own error middleware, around everything else
    app = Starlette(routes=[Route("/ok", ok), Route("/broken", broken, methods=["POST"])],
                    middleware=[Middleware(EdgeMiddleware)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t")


async def test_the_clients_request_id_is_kept_and_echoed() -> None:
    async with client() as c:
        response = await c.get("/ok", headers={"x-request-id": "req-123"})
    assert response.headers["x-request-id"] == "req-123" and response.text == "req-123"


async def test_a_missing_or_unfit_request_id_is_replaced() -> None:
    async with client() as c:
        fresh = await c.get("/ok")
        too_long = await c.get("/ok", headers={"x-request-id": "x" * 65})
    assert len(fresh.headers["x-request-id"]) == 36
    assert too_long.headers["x-request-id"] != "x" * 65 and len(too_long.headers["x-request-id"]) == 36


async def test_an_unhandled_error_is_an_openai_shaped_500_with_the_id_and_is_counted() -> None:
    def count() -> float:
        return REGISTRY.get_sample_value("jetgate_http_requests_total", {"route": "/broken", "status": "500"}) or 0.0

    before = count()
    async with client() as c:
        response = await c.post("/broken", headers={"x-request-id": "req-500"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "req-500"
    assert orjson.loads(response.content)["error"]["code"] == "internal_error"
    assert count() == before + 1
    assert REGISTRY.get_sample_value("jetgate_http_requests_in_flight") == 0


async def test_one_trailing_slash_is_served_as_the_path_without_it_not_redirected() -> None:
    async with client() as c:
        slashed = await c.get("/ok/", headers={"x-request-id": "req-slash"})
        posted = await c.post("/broken/")
        root = await c.get("/")
    assert slashed.status_code == 200 and slashed.text == "req-slash"
    assert posted.status_code == 500  # the route was found with its body, not a 307 without it
    assert root.status_code == 404  # "/" stays "/"
