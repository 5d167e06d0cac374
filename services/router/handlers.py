"""Router subscriptions: chat and embeddings calls (queue group), stream cancels (broadcast)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from nats.aio.msg import Msg
from pydantic import ValidationError

from services.router.failover import RouteFailure, call_with_failover
from services.router.http_client import make_http_client
from services.router.providers.base import ProviderError
from services.router.registry import ModelRegistry, RoutedModel
from services.router.relay import CallCancel, error_frame, relay_stream
from services.router.tokens import estimate_input_tokens, estimate_prompt_tokens
from services.router.upstream_errors import invalid_router_request, unknown_model
from services.router.usage import usage_event
from shared.bus import connect, ensure_streams
from shared.config import load_config
from shared.events import UsageEvent
from shared.messages import (
    CancelRequest,
    ChatRouteRequest,
    EmbeddingsRouteRequest,
    Frame,
)
from shared.openai_types import Usage
from shared.publisher import EventPublisher
from shared.settings import Settings
from shared.subjects import (
    FRAME_HEADER,
    ROUTER_CANCEL,
    ROUTER_CHAT,
    ROUTER_EMBEDDINGS,
    ROUTER_QUEUE,
    STATUS_HEADER,
)

log = logging.getLogger(__name__)

R = TypeVar("R", ChatRouteRequest, EmbeddingsRouteRequest)


class RouterWorker:
    def __init__(self, nc: Any, registry: ModelRegistry, publisher: EventPublisher) -> None:
        self._nc = nc
        self._registry = registry
        self._publisher = publisher
        self._cancels: dict[str, CallCancel] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, handler: Callable[[Msg], Awaitable[None]]) -> Callable[[Msg], Awaitable[None]]:
        """nats-py runs one callback at a time per subscription: give each call its own task,
        and make sure an unexpected failure still answers the caller (never a silent hang)."""
        async def guarded(msg: Msg) -> None:
            try:
                await handler(msg)
            except Exception as exc:
                log.exception("router call failed: %s", type(exc).__name__)
                if msg.reply:
                    failure = ProviderError(502, "The router failed while handling this call.", retryable=False,
                                            code="router_error")
                    with contextlib.suppress(Exception):
                        await self._reply_error(msg, 502, error_frame(failure))

        async def dispatch(msg: Msg) -> None:
            task = asyncio.get_running_loop().create_task(guarded(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return dispatch

    async def wait_idle(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def _reply_error(self, msg: Msg, status: int, body: bytes) -> None:
        await self._nc.publish(msg.reply, body, headers={STATUS_HEADER: str(status), FRAME_HEADER: Frame.ERROR.value})

    async def _accept(self, msg: Msg, kind: type[R]) -> tuple[R, RoutedModel] | None:
        """Parse a call and find its model, or answer the caller with the error."""
        try:
            request = kind.model_validate_json(msg.data)
        except ValidationError as exc:
            await self._reply_error(msg, 400, error_frame(invalid_router_request(exc.error_count())))
            return None
        routed = self._registry.get(request.body.model)
        if routed is None:
            await self._reply_error(msg, 404, error_frame(unknown_model(request.body.model)))
            return None
        return request, routed

    async def on_chat(self, msg: Msg) -> None:
        accepted = await self._accept(msg, ChatRouteRequest)
        if accepted is None:
            return
        request, routed = accepted
        body = request.body.model_dump(exclude_unset=True)
        if not request.body.stream:
            await self._complete(msg, request.request_id, request.principal, routed, body, "chat")
            return
        cancelled = CallCancel()
        call_id = request.call_id or request.request_id
        self._cancels[call_id] = cancelled
        try:
            event = await relay_stream(self._nc, msg.reply, request_id=request.request_id,
                                       principal=request.principal, routed=routed, body=body, cancelled=cancelled)
        finally:
            self._cancels.pop(call_id, None)
        self._publisher.emit(event)

    async def on_embeddings(self, msg: Msg) -> None:
        accepted = await self._accept(msg, EmbeddingsRouteRequest)
        if accepted is not None:
            request, routed = accepted
            await self._complete(msg, request.request_id, request.principal, routed,
                                 request.body.model_dump(exclude_unset=True), "embeddings")

    async def _complete(self, msg: Msg, request_id: str, principal: Any, routed: RoutedModel,
                        body: dict[str, Any], endpoint: str) -> None:
        started = time.perf_counter()
        embeddings = endpoint == "embeddings"

        async def call(target: Any, payload: dict[str, Any]) -> Any:
            if embeddings:
                return await target.provider.embeddings(payload, target.model)
            return await target.provider.chat(payload, target.model)

        try:
            answer = await call_with_failover(routed, body, call)
        except RouteFailure as failure:
            await self._reply_error(msg, failure.error.status, error_frame(failure.error))
            self._publisher.emit(usage_event(
                request_id=request_id, principal=principal, routed=routed, target=failure.target, usage=None,
                usage_source="none", status="error", endpoint=endpoint, stream=False,  # type: ignore[arg-type]
                latency_ms=(time.perf_counter() - started) * 1000, attempts=failure.attempts))
            return
        await self._nc.publish(msg.reply, orjson.dumps(answer.completion.body), headers={STATUS_HEADER: "200"})
        usage, source = answer.completion.usage, "upstream"
        if usage is None:
            if embeddings:
                prompt = estimate_input_tokens(body.get("input"))
            else:
                prompt = estimate_prompt_tokens(body.get("messages") or [])
            usage, source = Usage(prompt_tokens=prompt, total_tokens=prompt), "estimated"
        event: UsageEvent = usage_event(
            request_id=request_id, principal=principal, routed=routed, target=answer.target, usage=usage,
            usage_source=source, status="ok", endpoint=endpoint, stream=False,  # type: ignore[arg-type]
            latency_ms=(time.perf_counter() - started) * 1000, attempts=answer.attempts)
        self._publisher.emit(event)

    async def on_cancel(self, msg: Msg) -> None:
        try:
            request = CancelRequest.model_validate_json(msg.data)
        except ValidationError:
            return
        event = self._cancels.get(request.call_id)
        if event is not None:
            event.set()


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    config = load_config(settings.config)
    nc = await connect(settings.require("nats_url"), "jetgate-router")
    js = nc.jetstream()
    await ensure_streams(js, settings.stream_replicas)
    http = make_http_client()
    registry = ModelRegistry(config, http)
    publisher = EventPublisher(js)
    worker = RouterWorker(nc, registry, publisher)
    calls = [
        await nc.subscribe(ROUTER_CHAT, queue=ROUTER_QUEUE, cb=worker.spawn(worker.on_chat)),
        await nc.subscribe(ROUTER_EMBEDDINGS, queue=ROUTER_QUEUE, cb=worker.spawn(worker.on_embeddings)),
    ]
    await nc.subscribe(ROUTER_CANCEL, cb=worker.on_cancel)
    log.info("router ready: %d models", len(config.models))
    await stop.wait()
    log.info("router stopping: draining")
    for sub in calls:
        await sub.drain()  # no new calls reach this replica
    await worker.wait_idle(timeout=60)  # calls under way finish, streams included
    await publisher.flush()
    await nc.drain()
    await http.aclose()
