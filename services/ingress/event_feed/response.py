"""The feed's HTTP response: events as they are pulled, heartbeat comments while idle. Each
write waits at most `send_timeout_s` for the client to take it; a client that takes nothing
for that long, or that went away, ends the stream and its consumer.

A client that went away ends the stream twice over: its task is cancelled, and the loop
looks at `gone` before each event. A cancellation alone can be lost in Python 3.11: an
`asyncio.wait_for` whose inner task completes in the same turn returns its result and drops
the cancel (so the writes use `asyncio.timeout`, which creates no task), and nats-py waits
on `wait_for` inside `fetch`. Lost, it left the stream writing to nobody and pulling its
consumer forever, and the replica's stop waiting on it."""
from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services.ingress.event_feed.frames import HEARTBEAT, event_frame
from services.ingress.event_feed.hub import EventFeeds
from services.ingress.event_feed.query import FeedQuery
from services.ingress.event_feed.reader import FeedReader
from shared.metrics import EVENT_SUBSCRIBERS, FEED_DROPPED, FEED_EVENTS

log = logging.getLogger(__name__)

HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
           (b"x-accel-buffering", b"no")]


class SlowSubscriber(Exception):
    pass


class FeedResponse(Response):
    media_type = "text/event-stream"

    def __init__(self, feeds: EventFeeds, reader: FeedReader, query: FeedQuery) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = list(HEADERS)
        self._feeds = feeds
        self._reader = reader
        self._query = query
        self._send_timeout_s = feeds.settings.send_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = self._query.kind.value
        EVENT_SUBSCRIBERS.labels(stream).inc()
        gone = asyncio.Event()
        try:
            streaming = asyncio.ensure_future(self._stream(send, gone))
            watching = asyncio.ensure_future(_disconnected(receive, gone))
            done, pending = await asyncio.wait({streaming, watching}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if streaming in done:
                error = streaming.exception()
                if error is not None and not isinstance(error, SlowSubscriber):
                    log.warning("event feed ended: %s", type(error).__name__)
                if not isinstance(error, SlowSubscriber) and not gone.is_set():  # the bus failed: end cleanly
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(self._send_timeout_s):
                            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            EVENT_SUBSCRIBERS.labels(stream).dec()
            await self._reader.close()
            self._feeds.release()

    async def _send(self, send: Send, body: bytes) -> None:
        try:
            async with asyncio.timeout(self._send_timeout_s):
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except TimeoutError as exc:
            FEED_DROPPED.labels(self._query.kind.value).inc()
            raise SlowSubscriber from exc

    async def _stream(self, send: Send, gone: asyncio.Event) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await self._send(send, b": stream " + self._query.kind.value.encode() + b"\n\n")  # the head goes out now
        async for message in self._reader.messages():
            if gone.is_set():
                return
            if message is None:
                await self._send(send, HEARTBEAT)
                continue
            try:
                event = orjson.loads(message.data)
            except orjson.JSONDecodeError:
                continue  # not an event (accounting dead-letters these)
            if not isinstance(event, dict) or not self._query.keeps(event):
                continue
            await self._send(send, event_frame(message.seq, str(event.get("type", "message")), message.data))
            FEED_EVENTS.labels(self._query.kind.value).inc()


async def _disconnected(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()
