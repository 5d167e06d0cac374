"""Durable event publishing off the hot path.

`emit` returns at once. Events go out in the order emitted, from one drain task that runs
while any are queued: each is published (`publish_async`) and its JetStream
acknowledgement awaited by a callback, up to `ack_timeout_s`, with no task or timeout
coroutine per event. An event whose publish or acknowledgement fails goes to the slow
path: a task of its own that publishes it again with the same `Nats-Msg-Id`, so a retry
never doubles an event. `flush` waits for every pending publish, and is called on shutdown.

An event is called lost only when it truly is: `attempts` publishes went unacknowledged
while the connection was up the whole time, or the connection is closed for good. While
the connection is down (nats-server restarting, a cluster electing), nats-py holds what
was published in its buffer and sends it on reconnect, so such an attempt is not counted:
the publisher waits for the connection and asks again (the same id: stored once).
Pending events (queued, awaiting their acknowledgement, or retrying) accumulate up to
`max_pending`; `saturated` tells the ingress to refuse new requests (503) rather than
accept work it cannot record, so memory stays bounded.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from functools import partial

from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import Counter

from shared.bus import event_data, event_headers, event_subject
from shared.events import Event
from shared.metrics import EVENTS_PUBLISHED
from shared.settings import EventSettings

log = logging.getLogger(__name__)


class EventPublisher:
    def __init__(self, js: JetStreamContext, settings: EventSettings | None = None, *,
                 nc: Client | None = None) -> None:
        self._js = js
        self._nc = nc or js._nc
        self._settings = settings or EventSettings()
        self._queue: deque[Event] = deque()
        self._drainer: asyncio.Task[None] | None = None
        self._awaiting_ack = 0
        self._retrying: set[asyncio.Task[None]] = set()
        self._published_ok: dict[str, Counter] = {}  # the metric's child per event type, looked up once
        self._settled = asyncio.Event()  # set whenever nothing is pending (what `flush` waits for)

    def emit(self, event: Event) -> None:
        self._queue.append(event)
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self._settings.ack_timeout_s
        try:
            while self._queue:
                event = self._queue.popleft()
                if not self._nc.is_connected:
                    self._retry(event)  # the slow path waits for the connection
                    continue
                try:
                    ack = await self._js.publish_async(event_subject(event), event_data(event),
                                                       headers=event_headers(event))
                except Exception:
                    self._retry(event)
                    continue
                self._awaiting_ack += 1
                ack.add_done_callback(partial(self._acked, event, self._reconnects(),
                                              loop.call_later(timeout, ack.cancel)))
        finally:
            self._drainer = None

    def _acked(self, event: Event, reconnects: int, timer: asyncio.TimerHandle, ack: asyncio.Future[object]) -> None:
        timer.cancel()
        self._awaiting_ack -= 1
        if not ack.cancelled() and ack.exception() is None:
            self._ok(event.type)
            self._settle_if_idle()
        else:  # not acknowledged in time, or refused: published again (same id), this attempt counted as ever
            held = self._nc.is_connected and self._reconnects() == reconnects
            self._retry(event, failures=int(held))

    def _settle_if_idle(self, _task: object = None) -> None:
        if not self.pending:
            self._settled.set()

    def _ok(self, event_type: str) -> None:
        counter = self._published_ok.get(event_type)
        if counter is None:
            counter = self._published_ok[event_type] = EVENTS_PUBLISHED.labels(event_type, "ok")
        counter.inc()

    def _retry(self, event: Event, failures: int = 0) -> None:
        task = asyncio.get_running_loop().create_task(self._publish(event, failures))
        self._retrying.add(task)
        task.add_done_callback(self._retrying.discard)
        task.add_done_callback(self._settle_if_idle)

    async def publish(self, event: Event) -> None:
        await self._publish(event)

    def _reconnects(self) -> int:
        return int(self._nc.stats.get("reconnects", 0))

    async def _publish(self, event: Event, failures: int = 0) -> None:
        """The slow path: publish until acknowledged; `failures`: attempts already made on a
        connection that held."""
        settings = self._settings
        if failures >= settings.attempts:  # the drain's attempt was the last one allowed
            return self._lost(event, f"{failures} attempts")
        subject, data, headers = event_subject(event), event_data(event), event_headers(event)
        delay = settings.retry_delay_s
        while True:
            await self._connected()
            if self._nc.is_closed:
                return self._lost(event, "the NATS connection is closed")
            reconnects = self._reconnects()
            try:
                # no stall timeout here: nats-py would wrap the wait in a task of its own for every
                # event; the publisher's own bound (max_pending) keeps the in-flight count in check
                ack = await self._js.publish_async(subject, data, headers=headers)
                await asyncio.wait_for(ack, settings.ack_timeout_s)
                self._ok(event.type)
                return
            except Exception as exc:
                if self._nc.is_connected and self._reconnects() == reconnects:
                    failures += 1  # the connection held: JetStream itself did not take it
                    if failures >= settings.attempts:
                        return self._lost(event, f"{failures} attempts: {type(exc).__name__}")
                # else: the bus went away meanwhile; what nats-py buffered goes out on reconnect
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.max_retry_delay_s)

    async def _connected(self) -> None:
        """Wait while the connection is down (bounded by the client's own reconnect loop:
        it ends connected or closed)."""
        delay = self._settings.retry_delay_s
        while not self._nc.is_connected and not self._nc.is_closed:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.max_retry_delay_s)

    def _lost(self, event: Event, why: str) -> None:
        EVENTS_PUBLISHED.labels(event.type, "lost").inc()
        log.error("event %s (%s) not published: %s", event.id, event.type, why)

    @property
    def pending(self) -> int:
        return len(self._queue) + self._awaiting_ack + len(self._retrying)

    @property
    def saturated(self) -> bool:
        return self.pending >= self._settings.max_pending

    async def flush(self) -> None:
        """Wait (up to `flush_timeout_s`) until nothing is pending."""
        if not self.pending:
            return
        self._settled.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), self._settings.flush_timeout_s)
