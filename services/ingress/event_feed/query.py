"""What one subscriber asked for: which stream and organisation, where to start, which
events to keep; and the ephemeral consumer that serves it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.event_catalog import types_of
from shared.settings import EventFeedSettings
from shared.subjects import AUDIT_STREAM, USAGE_STREAM, StreamSpec, audit_subject, usage_subject


class FeedKind(StrEnum):
    USAGE = "usage"
    AUDIT = "audit"


@dataclass(frozen=True)
class FeedSource:
    stream: StreamSpec
    types: tuple[str, ...]  # the event types this stream carries

    def subjects(self, org_id: str, types: frozenset[str]) -> list[str]:
        if self.stream is USAGE_STREAM:
            return [usage_subject(org_id)]
        if types:  # the audit subject ends in the type: the server filters
            return sorted(audit_subject(org_id, t) for t in types)
        return [audit_subject(org_id, ">")]


SOURCES: dict[FeedKind, FeedSource] = {
    FeedKind.USAGE: FeedSource(USAGE_STREAM, types_of(USAGE_STREAM)),
    FeedKind.AUDIT: FeedSource(AUDIT_STREAM, types_of(AUDIT_STREAM)),
}


@dataclass(frozen=True)
class FeedQuery:
    kind: FeedKind
    org_id: str
    after_seq: int | None = None  # Last-Event-ID: the stream sequence of the last event seen
    since: datetime | None = None
    types: frozenset[str] = frozenset()
    key_ids: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()

    @property
    def source(self) -> FeedSource:
        return SOURCES[self.kind]

    def keeps(self, event: dict[str, Any]) -> bool:
        """The filters the subject cannot express (types are in the audit subject; checked
        here too for the usage stream)."""
        if self.types and event.get("type") not in self.types:
            return False
        if self.key_ids and event.get("key_id") not in self.key_ids:
            return False
        if self.models:
            data = event.get("data")
            model = data.get("model") if isinstance(data, dict) else None
            if model not in self.models:
                return False
        return True

    def consumer_config(self, name: str, settings: EventFeedSettings) -> ConsumerConfig:
        """An ephemeral pull consumer: nothing to acknowledge, in memory, one replica, removed
        by the server once nobody pulled for `consumer_inactive_s`."""
        start: dict[str, Any] = {"deliver_policy": DeliverPolicy.NEW}
        if self.after_seq is not None:
            start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": self.after_seq + 1}
        elif self.since is not None:
            start = {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": self.since}
        subjects = self.source.subjects(self.org_id, self.types)
        filters: dict[str, Any] = {"filter_subject": subjects[0]} if len(subjects) == 1 else {"filter_subjects": subjects}
        return ConsumerConfig(name=name, ack_policy=AckPolicy.NONE, inactive_threshold=settings.consumer_inactive_s,
                              mem_storage=True, num_replicas=1, **start, **filters)
