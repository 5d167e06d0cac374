"""Relaying a streamed call's frames to the client as Anthropic's server-sent events.

Each `chunk` frame goes through the `StreamTranslator`; the `end` frame closes the message
(`message_delta`, `message_stop`); an `error` frame, or the stream failing, is sent as an
`event: error` in Anthropic's shape, after which the stream ends. The audit trail is the
chat surface's: `request.completed` at the end, `request.failed` otherwise (a client that
leaves included), emitted before the last write.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.ingress.anthropic_api.errors import error_body
from services.ingress.anthropic_api.stream import StreamTranslator, sse_event
from services.ingress.audit import RequestAudit
from services.ingress.frames import FrameStream
from services.ingress.sse import SSE_HEADERS
from shared.errors import ClientClosed, GatewayError, UpstreamError
from shared.protocol import Frame, error_of, frame_of


def _client_closed() -> GatewayError:
    return ClientClosed("The client closed the connection.")


def _error_event(error: GatewayError, audit: RequestAudit) -> bytes:
    return sse_event("error", error_body(error, audit.request_id))


async def message_events(stream: FrameStream, audit: RequestAudit, translator: StreamTranslator) -> AsyncIterator[bytes]:
    try:
        async for msg in stream:
            frame = frame_of(msg)
            if frame == Frame.CHUNK.value:
                try:
                    chunk = orjson.loads(msg.data)
                except orjson.JSONDecodeError:
                    raise UpstreamError("The upstream sent a stream chunk that is not JSON.") from None
                events = translator.feed(chunk if isinstance(chunk, dict) else {})
                if events:
                    yield b"".join(events)
            elif frame == Frame.END.value:
                audit.completed(200)
                yield b"".join(translator.finish())
                return
            else:
                error = error_of(msg) or GatewayError(f"The stream ended with an unexpected {frame} frame.")
                audit.failed(error, "failed mid-stream")
                yield _error_event(error, audit)
                return
    except GatewayError as error:
        audit.failed(error, "stream interrupted")
        yield _error_event(error, audit)
    except (asyncio.CancelledError, GeneratorExit):
        audit.failed(_client_closed(), "client disconnected")
        raise
    finally:
        stream.close()


class MessagesSseResponse(StreamingResponse):
    """Releases its stream even when the client left before the first byte (then the body
    generator never starts and its clean-up never runs)."""

    def __init__(self, stream: FrameStream, audit: RequestAudit, translator: StreamTranslator) -> None:
        super().__init__(message_events(stream, audit, translator), media_type="text/event-stream",
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
