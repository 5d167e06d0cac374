"""Relaying a streamed Responses API call to the client: the typed events the router sends,
one per chunk frame (the provider's own, or the translator's), as OpenAI sends them: an
`event: <type>` line, then `data: <json>`. An event holding the `response` object gets
it as the client sees it (responses_api/conversation.py `presented`); every other event
goes on byte for byte. The stream ends after the last event (`response.completed`,
`response.incomplete` or `response.failed`); there is no `[DONE]`. A failure mid-stream,
or a stream that ends without its last event, is sent as an `error` event, after which
the stream ends. The finished response is stored (when asked) and the audit event emitted
before the last event is written, so a client that chains at once finds it, and one
leaving at that moment loses nothing.
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
from shared.errors import ClientClosed, GatewayError, UpstreamError
from shared.protocol import Frame, error_of, frame_of

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})

Json = dict[str, Any]
OnDone = Callable[[Json], Awaitable[None]]
Present = Callable[[Json], Json]


def encode(kind: str, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def _client_closed() -> GatewayError:
    return ClientClosed("The client closed the connection.")


def _event_of(data: bytes) -> Json:
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise UpstreamError("The stream carried an event that is not a Responses API event.")
    return event


class _Sequence:
    """The last `sequence_number` seen, so an error event the gateway adds follows on."""

    def __init__(self) -> None:
        self.next = 0

    def saw(self, event: Json) -> None:
        number = event.get("sequence_number")
        if isinstance(number, int):
            self.next = number + 1


async def response_events(stream: FrameStream, audit: RequestAudit, present: Present,
                          on_done: OnDone) -> AsyncIterator[bytes]:
    sequence = _Sequence()
    final: Json | None = None
    held = b""  # the last event, written once the response is kept
    try:
        async for msg in stream:
            frame = frame_of(msg)
            if frame == Frame.CHUNK.value:
                if held:  # an event after the last one: the last was not last
                    yield held
                    held, final = b"", None
                event = _event_of(msg.data)
                sequence.saw(event)
                data = msg.data
                if isinstance(event.get("response"), dict):
                    event["response"] = present(event["response"])
                    data = orjson.dumps(event)
                if event["type"] in FINAL_EVENTS:
                    final, held = event["response"], encode(event["type"], data)
                    continue
                yield encode(event["type"], data)
            elif frame == Frame.END.value:
                if final is None:
                    raise UpstreamError("The provider's stream ended before the response was complete.")
                await on_done(final)
                audit.completed(200)
                yield held
                return
            else:
                raise error_of(msg) or GatewayError(f"The stream ended with an unexpected {frame} frame.")
    except GatewayError as error:
        audit.failed(error, "failed mid-stream")
        yield encode("error", orjson.dumps({"type": "error", "sequence_number": sequence.next, "code": error.code,
                                            "message": error.message, "param": error.param}))
    except (asyncio.CancelledError, GeneratorExit):
        audit.failed(_client_closed(), "client disconnected")
        raise
    finally:
        stream.close()


class ResponseEventStream(StreamingResponse):
    """Releases its stream even when the client left before the first byte was sent."""

    def __init__(self, stream: FrameStream, audit: RequestAudit, present: Present, on_done: OnDone) -> None:
        super().__init__(response_events(stream, audit, present, on_done), media_type="text/event-stream",
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
