"""The router worker: the last stage of every pipeline (queue group `router`), and stream
cancels (a broadcast every replica hears).

A call's route was decided by the ingress; the router tries its deployments in order
(telling the caller before each one, see `Lease`), answers the caller's inbox (a whole
reply, in parts when it is large, or a stream of frames) and publishes one usage event per
call, whatever its outcome. A cancel stops the upstream call, streamed or not, and charges
what is known of it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import ValidationError

from services.router.failover import RouteFailure, call_with_failover
from services.router.health import DeploymentHealth, RouteHealth
from services.router.health_report import HealthReport
from services.router.http_client import UpstreamHttp
from services.router.kept_replies import KeptReplies
from services.router.openai_endpoints import ENDPOINTS
from services.router.passthrough import serve_passthrough
from services.router.providers.base import ChatCall, Completion, EmbeddingsCall
from services.router.registry import ProviderRegistry, Target
from services.router.relay import CallCancel, Opener, relay_stream
from services.router.responses.serve import events_from, response_from
from services.router.usage import usage_event
from shared.bus import connect, ensure_streams, jetstream
from shared.config import load_config
from shared.config_events import announce_config
from shared.control import CancelRequest, ReplyAgain
from shared.errors import InvalidRequest
from shared.metrics_server import start_metrics_server
from shared.pipeline import Endpoint, Stage
from shared.protocol import DEFAULT_FRAME_BYTES, Call, send_reply
from shared.publisher import EventPublisher
from shared.settings import Settings
from shared.stage import StageServer
from shared.subjects import ROUTER_CANCEL, ROUTER_RESEND
from shared.usage import call_usage, estimated_usage

log = logging.getLogger(__name__)

Attempt = Callable[[Target], Awaitable[Completion]]


def _body(call: Call) -> dict[str, Any]:
    try:
        body = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The call's body is not JSON.", code="invalid_call") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The call's body is not a JSON object.", code="invalid_call")
    return body


class RouterWorker:
    def __init__(self, nc: Client, registry: ProviderRegistry, publisher: EventPublisher,
                 frame_bytes: int = DEFAULT_FRAME_BYTES, http: UpstreamHttp | None = None,
                 health: DeploymentHealth | None = None, kept: KeptReplies | None = None) -> None:
        self._nc = nc
        self._kept = kept  # None: no reply is kept for asking again
        self._health = health  # None: every deployment is always tried
        self._http = http or UpstreamHttp()
        self._registry = registry
        self._publisher = publisher
        self._frame_bytes = frame_bytes
        self._cancels: dict[str, CallCancel] = {}

    def _route_health(self, call: Call) -> RouteHealth | None:
        return RouteHealth(self._health, call.envelope.route.model) if self._health is not None else None

    async def on_chat(self, msg: Msg, call: Call) -> None:
        envelope = call.envelope
        targets = self._registry.targets(envelope.route)
        body = _body(call)
        if not envelope.stream:
            await self._complete(msg, call, targets, body)
            return
        await self._relay(msg, call, targets, body)

    async def on_responses(self, msg: Msg, call: Call) -> None:
        """`/v1/responses`: each deployment natively or translated (services/router/responses/serve.py)."""
        targets = self._registry.targets(call.envelope.route)
        body = _body(call)
        if not call.envelope.stream:
            await self._complete(msg, call, targets, body, lambda target: response_from(target, body))
            return
        await self._relay(msg, call, targets, body, lambda target: events_from(target, body))

    async def _relay(self, msg: Msg, call: Call, targets: tuple[Target, ...], body: dict[str, Any],
                     open_: Opener | None = None) -> None:
        assert msg.reply
        envelope = call.envelope
        cancelled = CallCancel()
        self._cancels[envelope.call_id] = cancelled
        try:
            event = await relay_stream(self._nc, msg.reply, call, targets, body, cancelled, open_,
                                       self._route_health(call))
        finally:
            self._cancels.pop(envelope.call_id, None)
        self._publisher.emit(event)

    async def on_endpoint(self, msg: Msg, call: Call) -> None:
        """One of OpenAI's other endpoints (services/router/openai_endpoints.py)."""
        envelope = call.envelope
        spec = ENDPOINTS[envelope.endpoint]
        body = {} if spec.multipart else _body(call)
        targets = self._registry.targets(envelope.route)
        if not envelope.stream:
            await self._complete(msg, call, targets, body)
            return
        await self._relay(msg, call, targets, body,
                          lambda target: target.provider.endpoint_stream(spec.request(call, body, target.model)))

    async def on_embeddings(self, msg: Msg, call: Call) -> None:
        await self._complete(msg, call, self._registry.targets(call.envelope.route), _body(call))

    async def on_passthrough(self, msg: Msg, call: Call) -> None:
        """A provider's native API, its answer relayed as it comes (services/router/passthrough.py)."""
        assert msg.reply
        envelope = call.envelope
        provider = self._registry.provider(envelope.route.targets[0].provider)
        cancel = CallCancel(asyncio.current_task())
        self._cancels[envelope.call_id] = cancel
        try:
            await serve_passthrough(self._nc, msg.reply, call, Target(provider, envelope.route.targets[0].model),
                                    self._http, cancel, self._publisher.emit)
        finally:
            self._cancels.pop(envelope.call_id, None)

    async def _complete(self, msg: Msg, call: Call, targets: tuple[Target, ...], body: dict[str, Any],
                        attempt: Attempt | None = None) -> None:
        """`attempt`: how one deployment is asked (by the call's endpoint unless told)."""
        assert msg.reply
        envelope = call.envelope
        started = time.perf_counter()
        embeddings = envelope.endpoint is Endpoint.EMBEDDINGS
        spec = ENDPOINTS.get(envelope.endpoint)

        async def by_endpoint(target: Target) -> Completion:
            if spec is not None:
                return await target.provider.endpoint_call(spec.request(call, body, target.model))
            if embeddings:
                return await target.provider.embeddings(EmbeddingsCall(body, target.model))
            return await target.provider.chat(ChatCall(body, target.model))

        tried: list[int] = []

        async def before(index: int) -> None:
            tried.append(index)
            if call.lease is not None:
                await call.lease.reaching(index)

        cancel = CallCancel(asyncio.current_task())
        self._cancels[envelope.call_id] = cancel
        try:
            answer = await call_with_failover(targets, envelope.endpoint.value, attempt or by_endpoint, before,
                                              self._route_health(call))
        except RouteFailure as failure:
            self._publisher.emit(usage_event(
                envelope, target=failure.target, usage=None, usage_source="none", status="error",
                latency_ms=(time.perf_counter() - started) * 1000, attempts=failure.attempts))
            raise failure.error from None
        except asyncio.CancelledError:
            if not cancel.ours():
                raise
            # the client went away: the upstream call is dropped, its prompt charged as counted here
            self._publisher.emit(usage_event(
                envelope, target=targets[tried[-1]] if tried else None,
                usage=estimated_usage(envelope.endpoint, body) if tried else None,
                usage_source="estimated" if tried else "none", status="cancelled",
                latency_ms=(time.perf_counter() - started) * 1000, attempts=len(tried)))
            return
        finally:
            self._cancels.pop(envelope.call_id, None)
        usage = answer.completion.usage
        event = usage_event(
            envelope, target=answer.target, usage=usage or estimated_usage(envelope.endpoint, body),
            usage_source="upstream" if usage else "estimated", status="ok",
            latency_ms=(time.perf_counter() - started) * 1000, attempts=answer.attempts,
            units=spec.units(body, usage) if spec is not None else Decimal(0))
        reply_usage = call_usage(event)
        if self._kept is not None:
            self._kept.keep(envelope.call_id, msg.reply, answer.completion.raw, reply_usage, answer.completion.headers)
        # emitted first: the event is published by the publisher's drain task, which then runs
        # before nats-py's flusher, so the reply and the event leave in one socket write
        self._publisher.emit(event)
        await send_reply(self._nc, msg.reply, answer.completion.raw, frame_bytes=self._frame_bytes,
                         client=answer.completion.headers, usage=reply_usage)

    async def on_cancel(self, msg: Msg) -> None:
        try:
            request = CancelRequest.model_validate_json(msg.data)
        except ValidationError:
            return
        cancel = self._cancels.get(request.call_id)
        if cancel is not None:
            cancel.set()

    async def on_reply_again(self, msg: Msg) -> None:
        """The ingress lost this call's reply in a bus outage: send it again if kept here."""
        try:
            request = ReplyAgain.model_validate_json(msg.data)
        except ValidationError:
            return
        kept = self._kept.take(request.call_id) if self._kept is not None else None
        if kept is not None:
            log.info("call %s: its reply sent again after a bus outage", request.call_id)
            await send_reply(self._nc, kept.inbox, kept.body, frame_bytes=self._frame_bytes,
                             client=kept.client, usage=kept.usage)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    config = load_config(settings.config)
    start_metrics_server(settings.router.metrics_host, settings.router.metrics_port, "router")
    router = settings.router
    kept = KeptReplies(router.kept_replies_window_s, router.kept_replies_keep_s, router.kept_replies_max_bytes)
    nc = await connect(settings.require("nats_url"), "jetgate-router", settings.bus,
                       on_disconnected=kept.disconnected, on_reconnected=kept.reconnected)
    js = jetstream(nc, settings.bus)
    await ensure_streams(js, settings.stream_replicas, settings.stream_limits())
    http = UpstreamHttp()
    registry = ProviderRegistry(config, http)
    publisher = EventPublisher(js, settings.events)
    report = HealthReport(publisher.emit, router.cooldown_s)
    report.seed(config)
    health = DeploymentHealth(router.unhealthy_after_failures, router.cooldown_s, on_change=report)
    worker = RouterWorker(nc, registry, publisher, settings.bus.frame_bytes, http, health, kept)
    server = StageServer(nc, Stage.ROUTER, {Endpoint.CHAT: worker.on_chat, Endpoint.RESPONSES: worker.on_responses,
                                            Endpoint.EMBEDDINGS: worker.on_embeddings,
                                            Endpoint.PASSTHROUGH: worker.on_passthrough,
                                            **dict.fromkeys(ENDPOINTS, worker.on_endpoint)},
                         concurrent=True, heartbeat_s=settings.bus.heartbeat_interval_s)
    await server.start()
    await nc.subscribe(ROUTER_CANCEL, cb=worker.on_cancel)
    await nc.subscribe(ROUTER_RESEND, cb=worker.on_reply_again)
    await announce_config(js, publisher.emit, "router", config, settings)
    log.info("router ready: %d providers", len(registry))
    await stop.wait()
    log.info("router stopping: draining")
    await server.stop(router.drain_timeout_s)  # calls under way finish, streams included
    await publisher.flush()
    await nc.drain()
    await http.close()
