"""A JetStream publisher fast enough to load accounting from one bench process.

`js.publish` is a request: a future, a timeout and a wait per event (the streams bench
reached ≈ 2,400/s with it). Here events are core publishes with a reply subject on an inbox
of our own (`<inbox>.<n>`); the PubAcks are counted in one callback, at most `window`
unacknowledged (pipelined, async acks). A PubAck with an error, or one that never comes
(`ack_timeout_s`), fails the run: every event counted as published is in the stream.

Bodies are the events' own JSON (`event_data` of a `UsageEvent`, as the router publishes
them) with the id, time, request id, org and key filled in per event, so each is stamped
when it is published (the lag read from ClickHouse starts there).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg

from shared.bus import event_data
from shared.events import UsageData, UsageEvent
from shared.ids import uuid7
from shared.subjects import usage_subject

WINDOW = 4000  # publishes in flight at most
_MARK = datetime(2000, 1, 1, tzinfo=UTC)


def _template() -> str:
    event = UsageEvent(id="@ID@", time=_MARK, source="router", org_id="@ORG@", key_id="@KEY@", request_id="@REQ@",
                       data=UsageData(model="gpt-4o-mini", provider="openai", prompt_tokens=12, completion_tokens=30,
                                      total_tokens=42, cost=Decimal("0.0000198"), latency_ms=3.5))
    text = event_data(event).decode().replace("%", "%%")
    stamp = event.model_dump(mode="json")["time"]
    for mark, field in (("@ID@", "id"), (stamp, "time"), ("@ORG@", "org"), ("@KEY@", "key"), ("@REQ@", "req")):
        text = text.replace(f'"{mark}"', f'"%({field})s"')
    return text


TEMPLATE = _template()

Body = tuple[str, bytes, dict[str, str]]  # subject, data, headers


def usage_body(i: int) -> Body:
    """Usage event `i` (10 orgs, 100 keys), stamped now."""
    event_id = uuid7()
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    org = f"org-{i % 10}"
    data = TEMPLATE % {"id": event_id, "time": now, "org": org, "key": f"key_{i % 100}", "req": f"r{i}"}
    return usage_subject(org), data.encode(), {"Nats-Msg-Id": event_id}


def usage_bodies(count: int, start: int = 0) -> list[Body]:
    return [usage_body(i) for i in range(start, start + count)]


class PipelinedPublisher:
    def __init__(self, nc: Client, window: int = WINDOW, ack_timeout_s: float = 10.0) -> None:
        self._nc = nc
        self._window = window
        self._ack_timeout_s = ack_timeout_s
        self._inbox = nc.new_inbox()
        self._inflight = 0
        self._sent = 0
        self.last_seq = 0
        self._room = asyncio.Event()
        self._room.set()
        self._error: str | None = None
        self._last_ack = time.monotonic()

    async def open(self) -> None:
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        self._inflight -= 1
        self._last_ack = time.monotonic()
        ack = orjson.loads(msg.data)
        if "error" in ack:
            self._error = str(ack["error"])
        elif ack["seq"] > self.last_seq:
            self.last_seq = ack["seq"]
        if self._inflight < self._window:
            self._room.set()

    async def publish(self, body: Body) -> None:
        while self._inflight >= self._window:
            self._room.clear()
            await self._wait(self._room)
        subject, data, headers = body
        self._sent += 1
        self._inflight += 1
        await self._nc.publish(subject, data, reply=f"{self._inbox}.{self._sent}", headers=headers)

    async def _wait(self, event: asyncio.Event) -> None:
        while True:
            self._check()
            try:
                await asyncio.wait_for(event.wait(), 0.5)
                return
            except TimeoutError:
                if time.monotonic() - self._last_ack > self._ack_timeout_s:
                    raise RuntimeError(f"no PubAck for {self._ack_timeout_s} s, {self._inflight} in flight") from None

    def _check(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"JetStream refused a publish: {self._error}")

    async def settle(self) -> int:
        """Wait for every PubAck; the highest stream sequence acknowledged."""
        await self._nc.flush()
        while self._inflight > 0:
            if time.monotonic() - self._last_ack > self._ack_timeout_s:
                raise RuntimeError(f"no PubAck for {self._ack_timeout_s} s, {self._inflight} in flight")
            await asyncio.sleep(0.01)
        self._check()
        return self.last_seq

    async def close(self) -> None:
        await self._sub.unsubscribe()


async def publish_bodies(nc: Client, bodies: Iterable[Body]) -> int:
    """As fast as JetStream acknowledges; the last stream sequence."""
    publisher = PipelinedPublisher(nc)
    await publisher.open()
    try:
        for body in bodies:
            await publisher.publish(body)
        return await publisher.settle()
    finally:
        await publisher.close()


async def publish_at(nc: Client, rate: int, seconds: float, make: Callable[[int], Body]) -> int:
    """Open loop: `rate` events a second in 5 ms ticks, each built when it is due; the last
    stream sequence once all are acknowledged."""
    publisher = PipelinedPublisher(nc)
    await publisher.open()
    try:
        total, sent = int(rate * seconds), 0
        started = time.monotonic()
        while sent < total:
            due = min(total, int((time.monotonic() - started) * rate))
            while sent < due:
                await publisher.publish(make(sent))
                sent += 1
            await asyncio.sleep(0.005)
        return await publisher.settle()
    finally:
        await publisher.close()
