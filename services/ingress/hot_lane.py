"""The hot lane: the calls that carry a gateway's traffic served by their route handlers
straight from ASGI, past FastAPI's routing and dependency solving (about a quarter of the
ingress's CPU per call, measured with py-spy: docs/benchmarks.md).

A lane is a `POST` path, the scope its key needs and the route's own handler; the key check,
the handler and its errors are exactly the FastAPI route's (the route stays, for the OpenAPI
document and every other method). The lane sits inside the edge (request id, metrics,
trailing slash) and CORS, so those apply as to every route.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from services.ingress.access import check_scope
from services.ingress.errors import error_response
from services.ingress.state import IngressState, current_principal
from shared.errors import GatewayError
from shared.events import Principal
from shared.tenancy import Scope

Handler = Callable[[Request, Principal, IngressState], Awaitable[Response]]


@dataclass(frozen=True)
class Lane:
    path: str  # also what the edge's metrics name the route by, as FastAPI's route would be
    scope: Scope
    handler: Handler


class HotLane:
    def __init__(self, app: ASGIApp, lanes: tuple[Lane, ...]) -> None:
        self.app = app
        self._lanes = {lane.path: lane for lane in lanes}

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        lane = self._lanes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if lane is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = lane
        request = Request(scope, receive, send)
        try:
            state: IngressState = request.app.state.ingress
            principal = check_scope(await current_principal(request, state), lane.scope)
            response = await lane.handler(request, principal, state)
        except GatewayError as error:
            response = error_response(error)
        await response(scope, receive, send)
