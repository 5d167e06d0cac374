"""Relaying a streamed chat call to the client as the Responses API's typed events.

Each event goes out as OpenAI sends it: an `event: <type>` line, then `data: <json>`. The
stream ends after `response.completed` (or `response.incomplete`); there is no `[DONE]`.
A failure mid-stream is sent as an `error` event, after which the stream ends. The finished
response is stored (when asked) and the audit event emitted before the last write, so a
client that chains at once finds it, and one leaving at that moment loses nothing.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.ingress.audit import RequestAudit
from services.ingress.frames import FrameStream
from services.ingress.responses_api.events import ResponseEvents
from services.ingress.responses_api.from_chat import parse_answer
from services.ingress.responses_api.objects import ResponseObject
from shared.errors import ClientClosed, GatewayError
from shared.protocol import Frame, error_of, frame_of

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}

OnDone = Callable[[ResponseObject], Awaitable[None]]


def encode(event: dict[str, Any]) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def _client_closed() -> GatewayError:
    return ClientClosed("The client closed the connection.")


async def response_events(stream: FrameStream, events: ResponseEvents, audit: RequestAudit,
                          on_done: OnDone) -> AsyncIterator[bytes]:
    try:
        opened = False
        async for msg in stream:  # the first frame is in already: the stream starts at once
            if not opened:
                opened = True
                yield b"".join(encode(event) for event in events.start())
            frame = frame_of(msg)
            if frame == Frame.CHUNK.value:
                for event in events.feed(parse_answer(msg.data)):
                    yield encode(event)
            elif frame == Frame.END.value:
                last = events.finish()
                await on_done(events.response)
                audit.completed(200)
                yield b"".join(encode(event) for event in last)
                return
            else:
                raise error_of(msg) or GatewayError(f"The stream ended with an unexpected {frame} frame.")
    except GatewayError as error:
        audit.failed(error, "failed mid-stream")
        yield encode(events.error(error.code, error.message, error.param))
    except (asyncio.CancelledError, GeneratorExit):
        audit.failed(_client_closed(), "client disconnected")
        raise
    finally:
        stream.close()


class ResponseEventStream(StreamingResponse):
    """Releases its stream even when the client left before the first byte was sent."""

    def __init__(self, stream: FrameStream, events: ResponseEvents, audit: RequestAudit, on_done: OnDone) -> None:
        super().__init__(response_events(stream, events, audit, on_done), media_type="text/event-stream",
                         headers=SSE_HEADERS)
        self._stream = stream
        self._audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._stream.started:
                self._audit.failed(_client_closed(), "client disconnected before the first byte")
            self._stream.close()
