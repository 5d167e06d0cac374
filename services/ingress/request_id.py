"""Every response carries `x-request-id`: the client's, or a new UUIDv7."""
from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.ids import uuid7

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

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
