"""Every response carries `x-request-id`: the client's, or a new UUIDv7."""
from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import GatewayError
from shared.ids import uuid7

log = logging.getLogger(__name__)

_MAX_LEN = 64


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if 0 < len(candidate) <= _MAX_LEN and candidate.isprintable():
                    request_id = candidate
                break
        request_id = request_id or uuid7()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode("latin-1"))

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.exception("unhandled error in request %s: %s", request_id, type(exc).__name__)
            if started:
                raise
            body = GatewayError("The gateway had an internal error.", code="internal_error").body()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"), header]})
            await send({"type": "http.response.body", "body": body.model_dump_json().encode()})
