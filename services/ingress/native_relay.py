"""Relaying a pass-through answer (services/router/passthrough.py) to the client: the
upstream's status and the headers it may see, from the first frame, then its bytes
untouched, chunk by chunk, as they come. An SSE stream stays the upstream's own events
(services/ingress/sse.py writes OpenAI's; this writes nothing of its own). A failure
after the head cannot be told in the body's own format: the body ends there (the audit
trail says why)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse
from nats.aio.msg import Msg
from starlette.types import Receive, Scope, Send

from services.ingress.audit import RequestAudit
from services.ingress.frames import FrameStream
from shared.errors import ClientClosed, GatewayError
from shared.protocol import Frame, client_headers, error_of, frame_of, status_of


def _client_closed() -> GatewayError:
    return ClientClosed("The client closed the connection.")


def head_of(first: Msg) -> tuple[int, dict[str, str]]:
    """The upstream's status and the response headers the client gets, from the first frame."""
    return status_of(first), client_headers(first)


async def native_bytes(stream: FrameStream, audit: RequestAudit, status: int) -> AsyncIterator[bytes]:
    try:
        async for msg in stream:
            frame = frame_of(msg)
            if frame == Frame.CHUNK.value:
                if msg.data:
                    yield msg.data
            elif frame == Frame.END.value:
                audit.completed(status)
                return
            else:
                error = error_of(msg) or GatewayError(f"The answer ended with an unexpected {frame} frame.")
                audit.failed(error, "failed mid-answer")
                return
    except GatewayError as error:
        audit.failed(error, "answer interrupted")
    except (asyncio.CancelledError, GeneratorExit):
        audit.failed(_client_closed(), "client disconnected")
        raise
    finally:
        stream.close()


class NativeResponse(StreamingResponse):
    """The upstream's answer as it comes; releases its stream also when the client left
    before the first byte (as services/ingress/sse.py's SseResponse does)."""

    def __init__(self, stream: FrameStream, first: Msg, audit: RequestAudit) -> None:
        status, headers = head_of(first)  # the upstream's content-type as it was (no charset added)
        super().__init__(native_bytes(stream, audit, status), status_code=status, headers=headers)
        self._stream = stream
        self._audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._stream.started:
                self._audit.failed(_client_closed(), "client disconnected before the first byte")
            self._stream.close()
