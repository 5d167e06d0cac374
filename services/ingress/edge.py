"""The ingress's one ASGI wrapper around every request: `x-request-id` on every response
(the client's, or a new UUIDv7), Prometheus counts and time to the response head per route
template, a last-resort OpenAI-shaped 500 that still carries the id, and one trailing slash
taken off the path (`/v1/chat/completions/` is served as `/v1/chat/completions`, not
redirected: a 307 loses the body with some clients), except on pass-through paths."""
from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import GatewayError
from shared.ids import uuid7
from shared.metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger(__name__)

_MAX_ID_LEN = 64
NATIVE_PREFIX = "/p/"  # pass-through paths reach the provider exactly as sent


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if 0 < len(candidate) <= _MAX_ID_LEN and candidate.isprintable():
                return candidate
            break
    return uuid7()


class EdgeMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/") and not path.startswith(NATIVE_PREFIX):
            scope = {**scope, "path": path[:-1]}
            if scope.get("raw_path"):
                scope["raw_path"] = scope["raw_path"].removesuffix(b"/")
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        started = False

        async def send_observed(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), id_header]
                route = getattr(scope.get("route"), "path", "unmatched")
                HTTP_REQUESTS.labels(route, str(message["status"])).inc()
                HTTP_LATENCY.labels(route).observe(time.perf_counter() - began)
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_observed)
        except Exception as exc:
            log.exception("unhandled error in request %s: %s", request_id, type(exc).__name__)
            if started:
                raise
            body = GatewayError("The gateway had an internal error.", code="internal_error").body()
            await send_observed({"type": "http.response.start", "status": 500,
                                 "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body.model_dump_json().encode()})
        finally:
            HTTP_IN_FLIGHT.dec()
