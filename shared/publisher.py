"""Durable event publishing off the hot path.

`emit` returns at once; the publish (with its PubAck) runs in a task and is retried with
the same `Nats-Msg-Id`, so a retry never doubles an event. `flush` waits for every
pending publish, and is called on shutdown. While JetStream is unreachable, pending events
accumulate up to `max_pending`; `saturated` tells the ingress to refuse new requests (503)
rather than accept work it cannot record, so memory stays bounded and nothing is dropped.
"""
from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext

from shared.bus import publish_event
from shared.events import KeyEvent, RequestEvent, UsageEvent
from shared.metrics import EVENTS_PUBLISHED

log = logging.getLogger(__name__)


class EventPublisher:
    def __init__(self, js: JetStreamContext, *, attempts: int = 20, max_pending: int = 20_000) -> None:
        self._js = js
        self._attempts = attempts
        self._max_pending = max_pending
        self._pending: set[asyncio.Task[None]] = set()

    def emit(self, event: UsageEvent | RequestEvent | KeyEvent) -> None:
        task = asyncio.get_running_loop().create_task(self._publish(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def publish(self, event: UsageEvent | RequestEvent | KeyEvent) -> None:
        await self._publish(event)

    async def _publish(self, event: UsageEvent | RequestEvent | KeyEvent) -> None:
        delay = 0.05
        for attempt in range(1, self._attempts + 1):
            try:
                await publish_event(self._js, event)
                EVENTS_PUBLISHED.labels(event.type, "ok").inc()
                return
            except Exception as exc:
                if attempt == self._attempts:
                    EVENTS_PUBLISHED.labels(event.type, "lost").inc()
                    log.error("event %s (%s) not published after %d attempts: %s",
                              event.id, event.type, attempt, type(exc).__name__)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def saturated(self) -> bool:
        return len(self._pending) >= self._max_pending

    async def flush(self, timeout: float = 10.0) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)
