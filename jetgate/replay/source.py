"""Where a replay reads: a JetStream stream by start time (or, resuming, by sequence), or a
file exported before the stream's retention passed.

The stream is read through an ephemeral pull consumer without acks, filtered to the
org's subject (`usage_subject` / `audit_subject`), in stream order. What it reads is the
stream as it was when the replay started: the number of events pending then is the
total, so a replay always ends, and events published meanwhile are left to accounting.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from jetgate.replay.records import Record, read_file
from shared.settings import ReplaySettings
from shared.subjects import AUDIT_STREAM, USAGE_STREAM, StreamSpec, audit_subject, usage_subject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    name: str
    stream: StreamSpec

    def subject(self, org_id: str | None) -> str:
        if org_id is None:
            return self.stream.subjects[0]
        return audit_subject(org_id, ">") if self.name == "audit" else usage_subject(org_id)


KINDS: dict[str, Kind] = {"audit": Kind("audit", AUDIT_STREAM), "usage": Kind("usage", USAGE_STREAM)}


@dataclass(frozen=True)
class Selection:
    """Which events: a subject filter (one org, or all) and a stored-time window [since, until)."""

    kind: Kind
    subject: str
    since: datetime | None = None
    until: datetime | None = None

    def holds(self, record: Record) -> bool:
        if self.since is not None and record.stored < self.since:
            return False
        if self.until is not None and record.stored >= self.until:
            return False
        return subject_matches(self.subject, record.subject)


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcards: `*` one token, `>` the rest (one token or more)."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(have) == len(want)


class StreamSource:
    def __init__(self, js: JetStreamContext, selection: Selection, settings: ReplaySettings,
                 after_seq: int | None = None) -> None:
        self._js = js
        self._selection = selection
        self._settings = settings
        self._after_seq = after_seq
        self.total: int | None = None

    def _config(self) -> ConsumerConfig:
        sel = self._selection
        config = ConsumerConfig(filter_subject=sel.subject, ack_policy=AckPolicy.NONE, mem_storage=True,
                                inactive_threshold=self._settings.consumer_idle_s, deliver_policy=DeliverPolicy.ALL)
        if self._after_seq is not None:
            config.deliver_policy, config.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, self._after_seq + 1
        elif sel.since is not None:
            config.deliver_policy, config.opt_start_time = DeliverPolicy.BY_START_TIME, sel.since
        return config

    async def batches(self) -> AsyncIterator[list[Record]]:
        stream = self._selection.kind.stream.name
        info = await self._js.add_consumer(stream, self._config())
        pending = self.total = int(info.num_pending or 0)
        sub = await self._js.pull_subscribe_bind(consumer=info.name, stream=stream)
        try:
            seen = 0
            while seen < pending:
                try:
                    msgs = await sub.fetch(min(self._settings.fetch_batch, pending - seen),
                                           timeout=self._settings.fetch_timeout_s)
                except TimeoutError:
                    left = (await sub.consumer_info()).num_pending or 0
                    if left == 0:  # the rest aged out of the stream meanwhile
                        return
                    continue
                seen += len(msgs)
                records = [Record(int(m.metadata.sequence.stream), m.subject, m.metadata.timestamp, m.data) for m in msgs]
                until = self._selection.until
                if until is not None and records and records[-1].stored >= until:
                    yield [r for r in records if r.stored < until]
                    return
                yield records
        finally:
            try:
                await sub.unsubscribe()
                await self._js.delete_consumer(stream, info.name)
            except Exception as exc:  # it expires on its own after consumer_idle_s
                log.debug("replay consumer cleanup: %s", type(exc).__name__)


class FileSource:
    def __init__(self, path: Path, selection: Selection, settings: ReplaySettings, after_seq: int | None = None) -> None:
        self._path = path
        self._selection = selection
        self._settings = settings
        self._after_seq = after_seq
        self.total: int | None = None

    def _records(self) -> Iterable[Record]:
        for record in read_file(self._path):
            if (self._after_seq is None or record.seq > self._after_seq) and self._selection.holds(record):
                yield record

    async def batches(self) -> AsyncIterator[list[Record]]:
        batch: list[Record] = []
        for record in self._records():
            batch.append(record)
            if len(batch) >= self._settings.fetch_batch:
                yield batch
                batch = []
        if batch:
            yield batch
