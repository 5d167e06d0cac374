"""The ingress's event feeds: a NATS connection of their own (a subscriber's traffic never
queues behind the gateway's calls and events, nor theirs behind it) and a bound on how many
are open at once."""
from __future__ import annotations

import contextlib

from nats.aio.client import Client
from nats.js import JetStreamContext

from services.ingress.event_feed.query import FeedQuery
from services.ingress.event_feed.reader import FeedReader
from shared.bus import connect, jetstream
from shared.errors import ServiceUnavailable
from shared.settings import EventFeedSettings, Settings


class EventFeeds:
    def __init__(self, nc: Client, js: JetStreamContext, settings: Settings) -> None:
        self._nc = nc
        self._js = js
        self.settings: EventFeedSettings = settings.event_feed
        self._timeout_s = settings.bus.request_timeout_s
        self.open = 0

    @classmethod
    async def connect(cls, settings: Settings) -> EventFeeds:
        nc = await connect(settings.require("nats_url"), "jetgate-ingress-events", settings.bus)
        return cls(nc, jetstream(nc, settings.bus), settings)

    async def reader(self, query: FeedQuery) -> FeedReader:
        """A reader with its consumer created; 503 past `max_subscribers` or when the bus fails."""
        if self.open >= self.settings.max_subscribers:
            raise ServiceUnavailable("Too many event subscribers on this replica; retry later.",
                                     code="too_many_subscribers")
        self.open += 1
        reader = FeedReader(self._js, query, self.settings, self._timeout_s)
        try:
            await reader.open()
        except Exception as exc:
            self.release()
            await reader.close()
            raise ServiceUnavailable("The event log is unavailable; retry later.", code="events_unavailable") from exc
        return reader

    def release(self) -> None:
        self.open -= 1

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._nc.close()
