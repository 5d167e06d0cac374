"""Reading one subscriber's events from its ephemeral consumer, pulled in bounded batches:
nothing is pulled while the subscriber has not taken what it was sent, so a slow or dead
subscriber holds at most one batch and costs the gateway nothing else."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.ingress.event_feed.query import FeedQuery
from shared.ids import uuid7
from shared.settings import EventFeedSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedMessage:
    seq: int  # the stream sequence: the SSE `id`
    data: bytes


IDLE = None  # yielded when nothing came for a heartbeat interval


class FeedReader:
    def __init__(self, js: JetStreamContext, query: FeedQuery, settings: EventFeedSettings, timeout_s: float) -> None:
        self._js = js
        self._query = query
        self._settings = settings
        self._timeout_s = timeout_s  # one JetStream API call
        self._name = f"feed-{uuid7().replace('-', '')}"
        self._sub: JetStreamContext.PullSubscription | None = None

    async def open(self) -> None:
        """Create the consumer (raises on a bus outage: the route answers 503 before streaming)."""
        stream = self._query.source.stream.name
        await asyncio.wait_for(self._js.add_consumer(stream, self._query.consumer_config(self._name, self._settings)),
                               self._timeout_s)
        self._sub = await self._js.pull_subscribe_bind(self._name, stream, pending_msgs_limit=self._settings.batch * 2)

    async def messages(self) -> AsyncIterator[FeedMessage | None]:
        """Events in stream order, or IDLE after `heartbeat_s` without one."""
        assert self._sub is not None, "open() first"
        batch = self._settings.batch
        while True:
            try:
                msgs = await self._sub.fetch(batch, timeout=self._settings.heartbeat_s)
            except TimeoutError:  # nats-py raises its own subclass, or asyncio's
                yield IDLE
                batch = 1
                continue
            for msg in msgs:
                yield FeedMessage(seq=msg.metadata.sequence.stream, data=msg.data)
            # a backlog: pull a batch (what is stored comes at once); caught up: ask for one, so
            # the next event is sent the moment it is stored (a pull of more waits to fill it)
            batch = self._settings.batch if msgs[-1].metadata.num_pending else 1

    async def close(self) -> None:
        """Delete the consumer now (best effort: the server removes it after
        `consumer_inactive_s` anyway)."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        with contextlib.suppress(NotFoundError, TimeoutError, asyncio.TimeoutError, nats.errors.Error):
            await asyncio.wait_for(self._js.delete_consumer(self._query.source.stream.name, self._name),
                                   self._timeout_s)
