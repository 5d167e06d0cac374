"""Where a replay reads: a JetStream stream by start time (or, resuming, by sequence), or a
file exported before the stream's retention passed.

The stream is read through an ephemeral pull consumer without acks (pull requests on a
core subscription, the next batch asked for while the last is written), filtered to the
org's subject (`usage_subject` / `audit_subject`), in stream order. What it reads is the
stream as it was when the replay started: the number of events pending then is the
total, so a replay always ends, and events published meanwhile are left to accounting.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
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
        puller = _Puller(self._js, stream, info.name, self._settings)
        try:
            await puller.start()
            seen = 0
            until = self._selection.until
            while seen < pending:
                msgs = await puller.take(min(self._settings.fetch_batch, pending - seen))
                if msgs is None:  # the rest aged out of the stream meanwhile
                    return
                seen += len(msgs)
                if seen < pending:  # the server sends the next batch while this one is written
                    puller.ask(min(self._settings.fetch_batch, pending - seen))
                records = [Record(int(m.metadata.sequence.stream), m.subject, m.metadata.timestamp, m.data) for m in msgs]
                if until is not None and records and records[-1].stored >= until:
                    yield [r for r in records if r.stored < until]
                    return
                yield records
        finally:
            await puller.close()
            try:
                await self._js.delete_consumer(stream, info.name)
            except Exception as exc:  # it expires on its own after consumer_idle_s
                log.debug("replay consumer cleanup: %s", type(exc).__name__)


class _Puller:
    """Pull requests on a core subscription with a callback: nats-py's `fetch` spends a task
    and a timeout per message, which bounded a replay to a few thousand events a second."""

    def __init__(self, js: JetStreamContext, stream: str, consumer: str, settings: ReplaySettings) -> None:
        self._js = js
        self._nc = js._nc
        self._subject = f"{js._prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._settings = settings
        self._inbox = self._nc.new_inbox()
        self._sub: Any = None
        self._buffer: list[Msg] = []
        self._want = 0  # messages asked for and not yet taken
        self._ended = asyncio.Event()  # what was asked for is in, or the server ended the pull
        self._asked: asyncio.Task[None] | None = None
        self._stream, self._consumer = stream, consumer

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg)

    async def _on_msg(self, msg: Msg) -> None:
        if not msg.data and msg.headers and msg.headers.get("Status"):  # 404/408/409: the pull ended short
            self._want = len(self._buffer)  # nothing more comes for it
            self._ended.set()
            return
        self._buffer.append(msg)
        if len(self._buffer) >= self._want:
            self._ended.set()

    def ask(self, count: int) -> None:
        self._want += count
        expires_ns = int(self._settings.fetch_timeout_s * 1e9)
        body = json.dumps({"batch": count, "expires": expires_ns}).encode()
        self._asked = asyncio.ensure_future(self._nc.publish(self._subject, body, reply=self._inbox))

    async def take(self, count: int) -> list[Msg] | None:
        """The next `count` messages (fewer if the server ended the pull); None: none left."""
        if self._want == 0:
            self.ask(count)
        while True:
            if len(self._buffer) < min(count, self._want):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ended.wait(), self._settings.fetch_timeout_s * 2)
            self._ended.clear()
            if self._buffer:
                msgs, self._buffer = self._buffer[:count], self._buffer[count:]
                self._want -= len(msgs)
                return msgs
            left = (await self._js.consumer_info(self._stream, self._consumer)).num_pending or 0
            if left == 0:
                return None
            self._want = 0
            self.ask(count)

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()


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
