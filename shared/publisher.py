"""Durable event publishing off the hot path.

`emit` returns at once; the publish runs in a task and waits (up to `ack_timeout_s`) for
JetStream's acknowledgement, and is retried with the same `Nats-Msg-Id`, so a retry never
doubles an event. `flush` waits for every pending publish, and is called on shutdown.

An event is called lost only when it truly is: `attempts` publishes went unacknowledged
while the connection was up the whole time, or the connection is closed for good. While
the connection is down (nats-server restarting, a cluster electing), nats-py holds what
was published in its buffer and sends it on reconnect, so such an attempt is not counted:
the publisher waits for the connection and asks again (the same id: stored once).
Pending events accumulate up to `max_pending`; `saturated` tells the ingress to refuse
new requests (503) rather than accept work it cannot record, so memory stays bounded.
"""
from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client
from nats.js import JetStreamContext

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
        self._pending: set[asyncio.Task[None]] = set()

    def emit(self, event: Event) -> None:
        task = asyncio.get_running_loop().create_task(self._publish(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def publish(self, event: Event) -> None:
        await self._publish(event)

    def _reconnects(self) -> int:
        return int(self._nc.stats.get("reconnects", 0))

    async def _publish(self, event: Event) -> None:
        settings = self._settings
        subject, data, headers = event_subject(event), event_data(event), event_headers(event)
        delay = settings.retry_delay_s
        failures = 0
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
                EVENTS_PUBLISHED.labels(event.type, "ok").inc()
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
        return len(self._pending)

    @property
    def saturated(self) -> bool:
        return len(self._pending) >= self._settings.max_pending

    async def flush(self) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self._settings.flush_timeout_s)
