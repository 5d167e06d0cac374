"""Relaying router frames to the client as OpenAI's server-sent events."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from nats.aio.msg import Msg

from services.ingress.audit import RequestAudit
from shared.errors import GatewayError, error_from_body
from shared.messages import Frame, RouteError
from shared.subjects import FRAME_HEADER

DONE = b"data: [DONE]\n\n"


async def sse_events(frames: AsyncIterator[Msg], audit: RequestAudit) -> AsyncIterator[bytes]:
    """Chunks as `data: {...}` events, then `data: [DONE]`; a failure mid-stream is sent as
    an `error` event (what OpenAI does), after which the stream ends."""
    try:
        async for msg in frames:
            frame = msg.headers.get(FRAME_HEADER) if msg.headers else None
            if frame == Frame.CHUNK.value:
                yield b"data: " + msg.data + b"\n\n"
            elif frame == Frame.END.value:
                yield DONE
                audit.completed(200)
                return
            elif frame == Frame.ERROR.value:
                failure = RouteError.model_validate_json(msg.data)
                yield b"data: " + failure.body.model_dump_json().encode() + b"\n\n"
                audit.failed(error_from_body(failure.status, failure.body), "failed mid-stream")
                return
    except GatewayError as error:
        yield b"data: " + error.body().model_dump_json().encode() + b"\n\n"
        audit.failed(error, "stream interrupted")
    except (asyncio.CancelledError, GeneratorExit):
        audit.failed(GatewayError("The client closed the connection.", status=499, code="client_closed"),
                     "client disconnected")
        raise
    finally:
        await frames.aclose()  # type: ignore[attr-defined]
