"""What the ingress holds while it runs, built in the lifespan, reached through dependencies."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingress.bus_guard import BusWatch
from services.ingress.calls import PipelineClient
from services.ingress.client_address import Network, client_address
from services.ingress.event_feed.hub import EventFeeds
from services.ingress.keycache import KeyCache
from services.ingress.last_used import LastUsed
from services.ingress.limits.admission import Limiter
from shared.config import GatewayConfig
from shared.errors import AuthenticationFailed
from shared.events import Principal
from shared.pipeline import Endpoint, Stage
from shared.protocol import Route
from shared.publisher import EventPublisher
from shared.settings import Settings


@dataclass
class IngressState:
    settings: Settings
    config: GatewayConfig
    nc: Client
    js: JetStreamContext
    engine: AsyncEngine
    keys: KeyCache
    pipeline: PipelineClient
    events: EventPublisher
    bus: BusWatch
    pipelines: dict[Endpoint, tuple[Stage, ...]]
    routes: dict[str, Route]  # model name -> its route, decided once per config
    last_used: LastUsed
    limiter: Limiter  # rate limits and budgets (services/ingress/limits)
    proxies: tuple[Network, ...] = ()  # INGRESS__TRUSTED_PROXIES
    feeds: EventFeeds | None = None  # the subscribers' event streams (/events/*)
    started: int = field(default_factory=lambda: int(time.time()))  # `created` of the model objects


async def get_state(request: Request) -> IngressState:
    return request.app.state.ingress  # type: ignore[no-any-return]


State = Annotated[IngressState, Depends(get_state)]


def _presented_key(request: Request) -> str:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = request.headers.get("x-api-key")
    if api_key:
        return api_key.strip()
    raise AuthenticationFailed(
        "You didn't provide an API key. Provide it in an Authorization header (Bearer) or in x-api-key.",
        code="missing_api_key")


def address_of(request: Request, state: IngressState) -> str | None:
    return client_address(request, state.proxies)


async def current_principal(request: Request, state: State) -> Principal:
    principal = await state.keys.authenticate(_presented_key(request), address_of(request, state))
    state.last_used.touch(principal.key_id)
    return principal


CurrentKey = Annotated[Principal, Depends(current_principal)]


def request_id_of(request: Request) -> str:
    return request.scope["state"]["request_id"]  # type: ignore[no-any-return]
