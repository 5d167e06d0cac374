"""Relaying router frames to the client as OpenAI's server-sent events."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.ingress.audit import RequestAudit
from services.ingress.frames import FrameStream
from shared.errors import ClientClosed, GatewayError
from shared.protocol import Frame, client_headers, error_of, frame_of

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _client_closed() -> GatewayError:
    return ClientClosed("The client closed the connection.")


async def sse_events(stream: FrameStream, audit: RequestAudit) -> AsyncIterator[bytes]:
    """Chunks as `data: {...}` events, then `data: [DONE]`; a failure mid-stream is sent as
    an `error` event (what OpenAI does), after which the stream ends. The audit event is
    emitted before the last write, so a client leaving at that moment cannot lose it."""
    try:
        async for msg in stream:
            frame = frame_of(msg)
            if frame == Frame.CHUNK.value:
                yield b"data: " + msg.data + b"\n\n"
            elif frame == Frame.END.value:
                audit.completed(200)
                yield DONE
                return
            else:
                error = error_of(msg) or GatewayError(f"The stream ended with an unexpected {frame} frame.")
                audit.failed(error, "failed mid-stream")
                yield b"data: " + error.body().model_dump_json().encode() + b"\n\n"
                return
    except GatewayError as error:
        audit.failed(error, "stream interrupted")
        yield b"data: " + error.body().model_dump_json().encode() + b"\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        audit.failed(_client_closed(), "client disconnected")
        raise
    finally:
        stream.close()


class SseResponse(StreamingResponse):
    """An SSE response that releases its stream even when the client left before the
    first byte was sent (then the body generator never starts and its clean-up never runs)."""

    def __init__(self, stream: FrameStream, audit: RequestAudit) -> None:
        # the upstream's rate-limit and processing headers, from the stream's first chunk
        super().__init__(sse_events(stream, audit), media_type="text/event-stream",
                         headers={**client_headers(stream.first), **SSE_HEADERS})
        self._stream = stream
        self._audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._stream.started:
                self._audit.failed(_client_closed(), "client disconnected before the first byte")
            self._stream.close()
