"""Relaying a stream to the caller's inbox, and charging it whatever happens.

Frames go to the inbox in order: `chunk`* then exactly one `end` or `error`. The upstream
is always asked for usage; when it sends none (or the caller cancels), the completion is
counted from the relayed text, so every streamed request is charged.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client

from services.router.failover import OpenStream, RouteFailure, open_stream_with_failover
from services.router.health import RouteHealth
from services.router.providers.base import ChatCall, Chunk
from services.router.registry import Target
from services.router.usage import Status, UsageSource, usage_event
from shared.errors import GatewayError
from shared.events import UsageEvent
from shared.openai_types import Usage
from shared.pipeline import Endpoint
from shared.protocol import Call, send_chunk, send_end, send_error
from shared.usage import call_usage, estimated_usage


@dataclass
class StreamTally:
    body: dict[str, Any]
    endpoint: Endpoint = Endpoint.CHAT
    usage: Usage | None = None
    text: list[str] = field(default_factory=list)

    def add(self, chunk: Chunk) -> None:
        if chunk.text:
            self.text.append(chunk.text)
        if chunk.usage is not None:
            self.usage = chunk.usage

    def final(self) -> tuple[Usage, UsageSource]:
        if self.usage is not None:
            return self.usage, "upstream"
        return estimated_usage(self.endpoint, self.body, "".join(self.text)), "estimated"


class CallCancel:
    """The caller's cancel of one call: takes effect at once. A stream's is seen between
    chunks and also while the upstream is silent (it interrupts the wait for the next
    chunk); a whole answer's interrupts `task`, the one waiting for the upstream."""

    def __init__(self, task: asyncio.Task[Any] | None = None) -> None:
        self._set = False
        self.waiting: asyncio.Future[Chunk] | None = None
        self.task = task

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        if self.waiting is not None:
            self.waiting.cancel()
        elif self.task is not None:
            self.task.cancel()

    def ours(self) -> bool:
        """Whether the CancelledError being handled is this cancel's (then it is taken back),
        and not a shutdown of the task."""
        task = asyncio.current_task()
        if not self._set or task is None or task.cancelling() > 1:
            return False
        task.uncancel()
        return True


async def _next_chunk(rest: AsyncGenerator[Chunk, None], cancel: CallCancel) -> Chunk | None:
    """The next chunk; None at the end of the stream or when the caller cancelled."""
    if cancel.is_set():
        return None
    waiting = asyncio.ensure_future(anext(rest))
    cancel.waiting = waiting
    try:
        return await waiting
    except StopAsyncIteration:
        return None
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if cancel.is_set() and not (task and task.cancelling()):
            return None  # our cancel, not a shutdown of this task
        raise
    finally:
        cancel.waiting = None


Opener = Callable[[Target], AsyncGenerator[Chunk, None]]


async def relay_stream(nc: Client, inbox: str, call: Call, targets: tuple[Target, ...],
                       body: dict[str, Any], cancelled: CallCancel, open_: Opener | None = None,
                       health: RouteHealth | None = None) -> UsageEvent:
    """`open_`: how a target's stream is opened (its chat stream unless told); `health`: the
    route's deployment health (services/router/health.py), told whether each one opened."""
    envelope = call.envelope
    started = time.perf_counter()
    tally = StreamTally(body, envelope.endpoint)

    def charge(target: Target | None, status: Status, attempts: int, usage: Usage | None = None,
               source: UsageSource = "none") -> UsageEvent:
        return usage_event(envelope, target=target, usage=usage, usage_source=source, status=status,
                           latency_ms=(time.perf_counter() - started) * 1000, attempts=attempts)

    try:
        opened: OpenStream = await open_stream_with_failover(
            targets, open_ or (lambda target: target.provider.chat_stream(ChatCall(body, target.model))),
            call.lease.reaching if call.lease else None, health)
    except RouteFailure as failure:
        await send_error(nc, inbox, failure.error)
        return charge(failure.target, "error", failure.attempts)

    status: Status = "ok"
    chunk = opened.first
    try:
        while True:
            tally.add(chunk)
            if envelope.include_usage or not chunk.usage_only:
                await send_chunk(nc, inbox, chunk.raw, chunk.headers)
            following = await _next_chunk(opened.rest, cancelled)
            if following is None:
                break
            chunk = following
        if cancelled.is_set():
            status = "cancelled"
        else:
            usage, source = tally.final()
            event = charge(opened.target, status, opened.attempts, usage, source)
            await send_end(nc, inbox, call_usage(event))
            return event
    except GatewayError as error:
        status = "error"
        await send_error(nc, inbox, error)
    finally:
        await opened.rest.aclose()
    usage, source = tally.final()
    return charge(opened.target, status, opened.attempts, usage, source)
