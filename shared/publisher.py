"""Durable event publishing off the hot path.

`emit` returns at once; the publish runs in a task and waits (up to `ack_timeout_s`) for
JetStream's acknowledgement, and is retried with the same `Nats-Msg-Id`, so a retry never
doubles an event. `flush` waits for every pending publish, and is called on shutdown.
While JetStream is unreachable, pending events accumulate up to `max_pending`; `saturated`
tells the ingress to refuse new requests (503) rather than accept work it cannot record,
so memory stays bounded and nothing is dropped.
"""
from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext

from shared.bus import event_data, event_headers, event_subject
from shared.events import Event
from shared.metrics import EVENTS_PUBLISHED
from shared.settings import EventSettings

log = logging.getLogger(__name__)


class EventPublisher:
    def __init__(self, js: JetStreamContext, settings: EventSettings | None = None) -> None:
        self._js = js
        self._settings = settings or EventSettings()
        self._pending: set[asyncio.Task[None]] = set()

    def emit(self, event: Event) -> None:
        task = asyncio.get_running_loop().create_task(self._publish(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def publish(self, event: Event) -> None:
        await self._publish(event)

    async def _publish(self, event: Event) -> None:
        settings = self._settings
        subject, data, headers = event_subject(event), event_data(event), event_headers(event)
        delay = settings.retry_delay_s
        for attempt in range(1, settings.attempts + 1):
            try:
                # no stall timeout here: nats-py would wrap the wait in a task of its own for every
                # event; the publisher's own bound (max_pending) keeps the in-flight count in check
                ack = await self._js.publish_async(subject, data, headers=headers)
                await asyncio.wait_for(ack, settings.ack_timeout_s)
                EVENTS_PUBLISHED.labels(event.type, "ok").inc()
                return
            except Exception as exc:
                if attempt == settings.attempts:
                    EVENTS_PUBLISHED.labels(event.type, "lost").inc()
                    log.error("event %s (%s) not published after %d attempts: %s",
                              event.id, event.type, attempt, type(exc).__name__)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, settings.max_retry_delay_s)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def saturated(self) -> bool:
        return len(self._pending) >= self._settings.max_pending

    async def flush(self) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self._settings.flush_timeout_s)
