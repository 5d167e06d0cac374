"""The hot lane: chat and embeddings served by their handlers past FastAPI's routing, with
the same key and scope checks, errors and metrics as a route. The gateway's own tests
(tests/e2e) run every chat and embeddings call through it; these pin the lane itself."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import httpx
import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from services.ingress.edge import EdgeMiddleware
from services.ingress.hot_lane import HotLane, Lane
from services.ingress.state import IngressState
from shared.errors import AuthenticationFailed, RateLimited
from shared.events import Principal
from shared.tenancy import Role, Scope

KEYS = {"sk-chat": Principal(key_id="k-chat", role=Role.MEMBER, scopes=[Scope.CHAT]),
        "sk-embed": Principal(key_id="k-embed", role=Role.MEMBER, scopes=[Scope.EMBEDDINGS])}


@dataclass
class Keys:
    async def authenticate(self, presented: str, address: str | None) -> Principal:
        if presented not in KEYS:
            raise AuthenticationFailed("Incorrect API key provided.")
        return KEYS[presented]


@dataclass
class Touched:
    ids: list[str] = field(default_factory=list)

    def touch(self, key_id: str) -> None:
        self.ids.append(key_id)


async def answer(request: Request, principal: Principal, state: IngressState) -> Response:
    body = orjson.loads(await request.body())
    if body.get("refuse"):
        raise RateLimited("slow down", retry_after="7", headers={"x-ratelimit-remaining-requests": "0"})
    return JSONResponse({"key": principal.key_id, "path": request.url.path, "echo": body})


async def behind(request: Request) -> PlainTextResponse:
    return PlainTextResponse("behind the lane")


def client() -> tuple[httpx.AsyncClient, Touched]:
    touched = Touched()
    app = Starlette(routes=[Route("/v1/chat/completions", behind, methods=["GET", "POST"])],
                    middleware=[Middleware(EdgeMiddleware),
                                Middleware(HotLane, lanes=(Lane("/v1/chat/completions", Scope.CHAT, answer),))])
    app.state.ingress = SimpleNamespace(keys=Keys(), last_used=touched, proxies=())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t"), touched


async def test_a_post_is_served_by_the_handler_with_the_keys_principal() -> None:
    c, touched = client()
    async with c:
        response = await c.post("/v1/chat/completions/", json={"n": 1}, headers={"authorization": "Bearer sk-chat"})
    assert response.status_code == 200 and response.json() == {"key": "k-chat", "path": "/v1/chat/completions",
                                                               "echo": {"n": 1}}
    assert len(response.headers["x-request-id"]) == 36  # the edge is around the lane
    assert touched.ids == ["k-chat"]


async def test_other_methods_reach_the_routes_behind() -> None:
    c, _ = client()
    async with c:
        response = await c.get("/v1/chat/completions")
    assert response.status_code == 200 and response.text == "behind the lane"


async def test_key_and_scope_are_checked_before_the_handler() -> None:
    c, touched = client()
    async with c:
        missing = await c.post("/v1/chat/completions", json={})
        wrong = await c.post("/v1/chat/completions", json={}, headers={"authorization": "Bearer sk-nope"})
        unscoped = await c.post("/v1/chat/completions", json={}, headers={"x-api-key": "sk-embed"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert unscoped.status_code == 403 and unscoped.json()["error"]["code"] == "scope_required"
    assert touched.ids == ["k-embed"]  # authenticated, then refused for its scope


async def test_a_handlers_error_is_openai_shaped_with_its_headers_and_counted_by_route() -> None:
    def count() -> float:
        return REGISTRY.get_sample_value("jetgate_http_requests_total",
                                         {"route": "/v1/chat/completions", "status": "429"}) or 0.0

    before = count()
    c, _ = client()
    async with c:
        response = await c.post("/v1/chat/completions", json={"refuse": True}, headers={"authorization": "Bearer sk-chat"})
    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limit_exceeded"
    assert response.headers["retry-after"] == "7" and response.headers["x-ratelimit-remaining-requests"] == "0"
    assert count() == before + 1
