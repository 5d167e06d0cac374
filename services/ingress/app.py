"""The ingress application: built by `create_app`, clients made in the lifespan."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from nats.aio.msg import Msg

from services.ingress.anthropic_api.request import CountTokensRequest, MessagesRequest
from services.ingress.bus_guard import BusWatch
from services.ingress.calls import PipelineClient
from services.ingress.client_address import parse_networks
from services.ingress.cors import install_cors
from services.ingress.edge import EdgeMiddleware
from services.ingress.errors import install_error_handlers
from services.ingress.event_feed.hub import EventFeeds
from services.ingress.hot_lane import HotLane
from services.ingress.keycache import KeyCache
from services.ingress.last_used import LastUsed
from services.ingress.limits.admission import Limiter
from services.ingress.limits.spend import ledger_spend
from services.ingress.limits.store import LimitStore, open_bucket
from services.ingress.openapi import install_openapi
from services.ingress.policy import pipelines_of, route_of
from services.ingress.routes import admin, admin_tenants, anthropic, health, openai, openai_endpoints, passthrough, responses
from services.ingress.routes import events as event_routes
from services.ingress.state import IngressState
from shared.admin_bodies import KEY_BODIES, TENANT_BODIES
from shared.bus import connect, ensure_streams, jetstream
from shared.config import load_config
from shared.config_events import announce_config
from shared.control import KeyRevoked, TenancyChanged
from shared.db.engine import make_engine
from shared.openai_audio import SpeechRequest
from shared.openai_completions import CompletionsRequest
from shared.openai_images import ImagesRequest
from shared.openai_moderations import ModerationsRequest
from shared.openai_responses import ResponsesRequest
from shared.openai_types import ChatCompletionRequest, EmbeddingsRequest
from shared.publisher import EventPublisher
from shared.secrets import remember_settings
from shared.settings import Settings
from shared.subjects import KEYS_REVOKED, TENANCY_CHANGED

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        remember_settings(settings)  # also when the app is served by another runner than __main__
        config = load_config(settings.config)
        bus = BusWatch(settings.ingress.bus_outage_wait_s, settings.ingress.bus_probe_timeout_s)
        nc = await connect(settings.require("nats_url"), "jetgate-ingress", settings.bus,
                           on_disconnected=bus.disconnected, on_reconnected=bus.reconnected)
        bus.watch(nc)
        js = jetstream(nc, settings.bus)
        await ensure_streams(js, settings.stream_replicas, settings.stream_limits())
        engine = make_engine(settings.require("database_url"), pool_size=10, postgres=settings.postgres)
        master = settings.master_key.get_secret_value() if settings.master_key else None
        keys = KeyCache(engine, settings.ingress, master_key=master)

        async def on_revoked(msg: Msg) -> None:
            try:
                keys.revoke(KeyRevoked.model_validate_json(msg.data).key_id)
            except ValueError:
                log.warning("ignored a malformed revocation message")

        async def on_changed(msg: Msg) -> None:
            try:
                changed = TenancyChanged.model_validate_json(msg.data)
            except ValueError:
                log.warning("ignored a malformed tenancy change message")
                return
            keys.invalidate(changed.kind, changed.id)

        await nc.subscribe(KEYS_REVOKED, cb=on_revoked)
        await nc.subscribe(TENANCY_CHANGED, cb=on_changed)
        events = EventPublisher(js, settings.events)
        kv = await open_bucket(js, settings.stream_replicas)
        limiter = Limiter(LimitStore(kv, settings.limits.kv_timeout_s), settings.limits, events.emit,
                          ledger_spend(engine, settings.ingress.key_store_timeout_s))
        limits_stop = asyncio.Event()
        limits_task = asyncio.get_running_loop().create_task(limiter.run(limits_stop))
        last_used = LastUsed(engine, settings.ingress.key_last_used_interval_s, settings.ingress.key_store_timeout_s)
        last_used.start()
        app.state.ingress = IngressState(
            settings=settings, config=config, nc=nc, js=js, engine=engine, keys=keys, events=events, bus=bus,
            pipeline=PipelineClient(nc, settings.ingress, events.emit, bus), pipelines=pipelines_of(config),
            routes={model.name: route_of(model) for model in config.models}, last_used=last_used, limiter=limiter,
            proxies=parse_networks(settings.ingress.trusted_proxies),
            feeds=await EventFeeds.connect(settings))
        await announce_config(js, events.emit, "ingress", config, settings)
        log.info("ingress ready: %d models", len(config.models))
        try:
            yield
        finally:
            if app.state.ingress.feeds is not None:
                await app.state.ingress.feeds.close()
            limits_stop.set()  # unused allowances go back to the shared state
            try:
                await asyncio.wait_for(limits_task, settings.limits.kv_timeout_s * 4)
            except Exception as exc:
                log.warning("limits: allowances not given back: %s", type(exc).__name__)
            await last_used.stop()
            await events.flush()
            try:
                await nc.drain()
            except Exception as exc:  # the bus is already gone: nothing left to flush
                log.warning("nats drain: %s", type(exc).__name__)
                await nc.close()
            await engine.dispose()

    otel = settings.ingress.opentelemetry
    app = FastAPI(title="JetGate", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  telemetry={"tracing": otel, "metrics": otel, "logs": otel})
    install_error_handlers(app)
    app.add_middleware(HotLane, lanes=openai.LANES)  # innermost: inside CORS and the edge
    install_cors(app, settings.ingress)  # inside the edge: preflights get a request id and are counted
    app.add_middleware(EdgeMiddleware)
    app.include_router(openai.router)
    app.include_router(openai_endpoints.router)
    app.include_router(responses.router)
    app.include_router(anthropic.router)
    app.include_router(admin.router)
    app.include_router(admin_tenants.router)
    app.include_router(event_routes.router)
    app.include_router(passthrough.router)
    app.include_router(health.router)
    install_openapi(app, [ChatCompletionRequest, EmbeddingsRequest, CompletionsRequest, ModerationsRequest,
                          ImagesRequest, SpeechRequest, ResponsesRequest, MessagesRequest,
                          CountTokensRequest, *KEY_BODIES, *TENANT_BODIES])
    return app
