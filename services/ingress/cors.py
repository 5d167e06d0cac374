"""CORS for browser apps calling the gateway: preflights answered before any key is asked
for, the origins a setting (`ingress.cors_allow_origins`). Keys travel in headers, never in
cookies, so credentials are not allowed cross-origin; the headers a client reads from our
answers (request id, rate limits, Retry-After) are exposed."""
from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from shared.settings import IngressSettings

EXPOSED = ("x-request-id", "retry-after", "openai-processing-ms",
           "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
           "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")


def install_cors(app: FastAPI, settings: IngressSettings) -> None:
    if not settings.cors_allow_origins:
        return
    app.add_middleware(CORSMiddleware, allow_origins=settings.cors_allow_origins, allow_credentials=False,
                       allow_methods=["GET", "POST", "PATCH", "DELETE"], allow_headers=["*"],
                       expose_headers=list(EXPOSED), max_age=settings.cors_max_age_s)
