"""Relaying a stream to the caller's inbox, and charging it whatever happens.

Frames go to the inbox in order: `chunk`* then exactly one `end` or `error`. The upstream
is always asked for usage; when it sends none (or the caller cancels), the completion is
counted from the relayed text, so every streamed request is charged.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client

from services.router.failover import OpenStream, RouteFailure, open_stream_with_failover
from services.router.providers.base import ProviderError, StreamChunk
from services.router.registry import RoutedModel
from services.router.tokens import (
    chunk_text,
    estimate_prompt_tokens,
    estimate_text_tokens,
)
from services.router.usage import usage_event
from shared.errors import ErrorBody, ErrorDetail
from shared.events import Principal, UsageEvent
from shared.messages import Frame, RouteError, StreamEnd
from shared.openai_types import Usage
from shared.subjects import FRAME_HEADER

CHUNK_HEADERS = {FRAME_HEADER: Frame.CHUNK.value}
END_FRAME = StreamEnd().model_dump_json().encode()


def error_frame(error: ProviderError) -> bytes:
    body = ErrorBody(error=ErrorDetail(message=error.message, type=error.error_type, param=error.param,
                                       code=error.code))
    headers = {"retry-after": error.retry_after} if error.retry_after else {}
    return RouteError(status=error.status, body=body, headers=headers).model_dump_json().encode()


@dataclass
class StreamTally:
    body: dict[str, Any]
    usage: Usage | None = None
    text: list[str] = field(default_factory=list)

    def add(self, parsed: dict[str, Any]) -> None:
        self.text.append(chunk_text(parsed))

    def final(self) -> tuple[Usage, str]:
        if self.usage is not None:
            return self.usage, "upstream"
        prompt = estimate_prompt_tokens(self.body.get("messages") or [])
        completion = estimate_text_tokens("".join(self.text))
        return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion), "estimated"


class CallCancel:
    """The caller's cancel of one stream: takes effect at once, also while the upstream is
    silent (it interrupts the wait for the next chunk, not only the gap between chunks)."""

    def __init__(self) -> None:
        self._set = False
        self.waiting: asyncio.Future[StreamChunk] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        if self.waiting is not None:
            self.waiting.cancel()


async def _next_chunk(rest: AsyncIterator[StreamChunk], cancel: CallCancel) -> StreamChunk | None:
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


async def relay_stream(nc: Client, inbox: str, *, request_id: str, principal: Principal, routed: RoutedModel,
                       body: dict[str, Any], cancelled: CallCancel) -> UsageEvent:
    started = time.perf_counter()
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    tally = StreamTally(body)
    try:
        opened: OpenStream = await open_stream_with_failover(routed, body)
    except RouteFailure as failure:
        await nc.publish(inbox, error_frame(failure.error), headers={FRAME_HEADER: Frame.ERROR.value})
        return usage_event(request_id=request_id, principal=principal, routed=routed, target=failure.target,
                           usage=None, usage_source="none", status="error", endpoint="chat", stream=True,
                           latency_ms=(time.perf_counter() - started) * 1000, attempts=failure.attempts)

    status = "ok"
    chunk = opened.first
    try:
        while True:
            tally.add(chunk.parsed)
            usage = chunk.usage  # parsed once per chunk
            if usage is not None:
                tally.usage = usage
            if wants_usage or not chunk.is_usage_only:
                await nc.publish(inbox, chunk.raw, headers=CHUNK_HEADERS)
            following = await _next_chunk(opened.rest, cancelled)
            if following is None:
                break
            chunk = following
        if cancelled.is_set():
            status = "cancelled"
        else:
            await nc.publish(inbox, END_FRAME, headers={FRAME_HEADER: Frame.END.value})
    except ProviderError as error:
        status = "error"
        await nc.publish(inbox, error_frame(error), headers={FRAME_HEADER: Frame.ERROR.value})
    finally:
        await opened.rest.aclose()
    usage, source = tally.final()
    return usage_event(request_id=request_id, principal=principal, routed=routed, target=opened.target,
                       usage=usage, usage_source=source, status=status, endpoint="chat", stream=True,  # type: ignore[arg-type]
                       latency_ms=(time.perf_counter() - started) * 1000, attempts=opened.attempts)
