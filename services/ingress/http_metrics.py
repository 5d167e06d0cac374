"""Prometheus counters and latency per route template and status (time to response head)."""
from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                name = getattr(route, "path", "unmatched")
                HTTP_REQUESTS.labels(name, str(message["status"])).inc()
                HTTP_LATENCY.labels(name).observe(time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, send_observed)
