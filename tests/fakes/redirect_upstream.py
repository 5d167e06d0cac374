"""A real local HTTP server that answers every request with a redirect to another host
(`302 Found`, `Location: <target>`), recording what it was asked: an upstream that tries
to send the gateway elsewhere (pass-through must not follow it)."""
from __future__ import annotations

import threading

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import ThreadedServer


class FakeRedirector:
    def __init__(self, target: str) -> None:
        self.target = target  # where every answer points
        self._lock = threading.Lock()
        self._paths: list[str] = []
        self._server: ThreadedServer | None = None
        self.port = 0

    def __enter__(self) -> FakeRedirector:
        app = Starlette(routes=[Route("/{rest:path}", self._redirect, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])])
        self._server = ThreadedServer(app, "fake-redirector")
        self._server.start()
        self.port = self._server.port
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def paths(self) -> list[str]:
        with self._lock:
            return list(self._paths)

    async def _redirect(self, request: Request) -> Response:
        await request.body()
        with self._lock:
            self._paths.append(request.url.path)
        return JSONResponse({"moved": True}, status_code=302, headers={"location": self.target + request.url.path})
