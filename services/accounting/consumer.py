"""The batch loop both accounting consumers run: pull → parse → write → ack.

Messages come through pull requests on a core subscription (services/accounting/pull.py),
two batches asked for ahead; a batch fills up to batch_size, for at most batch_wait_s.
On stop nothing more is asked for, and all the server sent is written and settled first.

Every message ends one of three ways:
- acked, after the write of its batch succeeded;
- dead-lettered: published unchanged to `dlq_subject(consumer)` with the reason in
  headers, counted, then terminated (it does not parse, is the wrong type for its
  stream, or the store refused its values);
- nak'ed with a growing delay, so JetStream redelivers it (the store failed).
Nothing is acked before it is durable somewhere, and writes are idempotent on the event
id, so a crash at any point loses nothing and counts nothing twice.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.accounting.failures import is_permanent
from services.accounting.pull import DurablePull
from shared.metrics import BATCH_SIZE, CONSUMER_LAG, CONSUMER_LAG_SECONDS, DEAD_LETTERS, EVENTS_CONSUMED
from shared.settings import AccountingSettings
from shared.subjects import StreamSpec, dlq_subject

log = logging.getLogger(__name__)

T = TypeVar("T")

DLQ_REASON = "Jetgate-Dlq-Reason"
DLQ_SUBJECT = "Jetgate-Dlq-Subject"
DLQ_CONSUMER = "Jetgate-Dlq-Consumer"
DLQ_SEQUENCE = "Jetgate-Dlq-Stream-Seq"
DLQ_MSG_ID = "Jetgate-Dlq-Msg-Id"

WINDOW_BATCHES = 2  # asked for ahead and not yet taken: the next batch arrives while one is written
TRICKLE_SHARE = 10  # a batch under 1/10 of batch_size once what is stored is taken: wait for it to fill


@dataclass(frozen=True)
class ConsumerSpec:
    name: str             # durable consumer name; also names the dead-letter subject
    stream: StreamSpec
    batch_size: int = 2000
    batch_wait_s: float = 0.5  # the longest a batch fills once its first message is in
    idle_poll_s: float = 1.0  # longest wait for a first message; bounds shutdown latency
    ack_wait_s: float = 30.0  # a message fetched and not settled in this time is redelivered
    max_nak_delay_s: float = 30.0
    failure_pause_s: float = 1.0  # after a failed batch, before the next fetch
    fill_timeout_s: float = 0.05  # a batch is still filling while messages come this close together

    @classmethod
    def from_settings(cls, name: str, stream: StreamSpec, settings: AccountingSettings) -> ConsumerSpec:
        return cls(name, stream, batch_size=settings.batch_size, batch_wait_s=settings.batch_wait_s,
                   idle_poll_s=settings.idle_poll_s, ack_wait_s=settings.ack_wait_s,
                   max_nak_delay_s=settings.max_nak_delay_s, failure_pause_s=settings.failure_pause_s,
                   fill_timeout_s=settings.fill_timeout_s)


def header_safe(text: str, limit: int = 512) -> str:
    """One printable line: NATS header values may not hold CR/LF."""
    flat = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return flat.encode("ascii", "replace").decode("ascii")[:limit]


def nak_delay(msg: Msg, longest: float) -> float:
    try:
        delivered = int(msg.metadata.num_delivered or 1)
    except Exception:
        delivered = 1
    return min(longest, 0.5 * float(2 ** min(delivered - 1, 6)))


class BatchConsumer(Generic[T]):
    def __init__(self, js: JetStreamContext, spec: ConsumerSpec, parse: Callable[[bytes], T] | None,
                 write: Callable[[list[T]], Awaitable[None]],
                 parse_msg: Callable[[Msg], T] | None = None) -> None:
        self._js = js
        self._spec = spec
        # parse_msg (instead of parse) sees the whole message: the audit writer needs its stream sequence
        if parse_msg is None:
            assert parse is not None, "parse or parse_msg"
            body_parse = parse
            parse_msg = lambda msg: body_parse(msg.data)  # noqa: E731
        self._parse: Callable[[Msg], T] = parse_msg
        self._write = write
        self._pull: DurablePull | None = None

    async def subscribe(self) -> None:
        spec = self._spec
        config = ConsumerConfig(
            name=spec.name, durable_name=spec.name, filter_subject=spec.stream.subjects[0],
            ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
            ack_wait=spec.ack_wait_s, max_deliver=-1, max_ack_pending=max(20_000, 4 * spec.batch_size),
        )
        pull = DurablePull(self._js, spec.stream.name, config, batch=spec.batch_size,
                           window=WINDOW_BATCHES * spec.batch_size, expires_s=spec.idle_poll_s)
        await pull.open()
        self._pull = pull

    async def close(self) -> None:
        """Drop the subscription. Messages delivered but not settled are redelivered after ack_wait."""
        pull, self._pull = self._pull, None
        if pull is not None:
            await pull.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`. The next batch is delivered while the current one is written;
        on `stop` no more is asked for, and everything delivered for what was asked (at most
        one pull expiry later) is still written and settled before returning."""
        if self._pull is None:
            await self.subscribe()
        assert self._pull is not None
        pull = self._pull
        while not stop.is_set():
            msgs = await self._take(self._collect(stop))
            healthy = msgs is not None
            if msgs:
                healthy = await self._handle_safely(msgs)
            if not healthy:
                await _sleep_unless(stop, self._spec.failure_pause_s)
        pull.stop_asking()
        await pull.settle_requests()
        while pull.buffered:
            await self._handle_safely(pull.take(self._spec.batch_size))
        await pull.flush()

    async def _handle_safely(self, msgs: list[Msg]) -> bool:
        try:
            return await self.handle(msgs)
        except Exception:  # the loop must outlive any one failure
            log.exception("%s: batch failed", self._spec.name)
            return False

    async def _take(self, collect: Awaitable[list[Msg]]) -> list[Msg] | None:
        try:
            return await collect
        except Exception as exc:
            log.warning("%s: pull failed: %s: %s", self._spec.name, type(exc).__name__, exc)
            return None

    async def _collect(self, stop: asyncio.Event) -> list[Msg]:
        """Up to batch_size messages. Once the first is in, the batch fills for at most
        batch_wait_s: what is stored comes back to back, so a gap of fill_timeout_s means it
        is taken and the batch is written, unless it is a trickle (under a tenth of
        batch_size), which waits out batch_wait_s to fill (few round trips, big inserts)."""
        assert self._pull is not None
        pull, spec = self._pull, self._spec
        await pull.top_up()
        await pull.wait_for(1, spec.idle_poll_s)
        if not pull.buffered or stop.is_set():
            return pull.take(spec.batch_size)
        deadline = time.monotonic() + spec.batch_wait_s
        trickle = max(1, spec.batch_size // TRICKLE_SHARE)
        while pull.buffered < spec.batch_size and (left := deadline - time.monotonic()) > 0:
            before = pull.received
            await pull.wait_for(spec.batch_size, min(spec.fill_timeout_s, left))
            if pull.received == before and pull.buffered >= trickle:
                break
        return pull.take(spec.batch_size)

    async def handle(self, msgs: list[Msg]) -> bool:
        """Settle every message of one batch. False when the store failed (retry later)."""
        parsed: list[tuple[Msg, T]] = []
        for msg in msgs:
            try:
                parsed.append((msg, self._parse(msg)))
            except Exception as exc:
                await self.dead_letter(msg, f"invalid event: {exc}")
        return await self._settle(parsed) if parsed else True

    async def _settle(self, items: list[tuple[Msg, T]]) -> bool:
        name = self._spec.name
        try:
            await self._write([event for _, event in items])
        except Exception as exc:
            if is_permanent(exc) and len(items) > 1:
                # One event the store refuses must not hold back the rest: write them one by one.
                results = [await self._settle([item]) for item in items]
                return all(results)
            if is_permanent(exc):
                await self.dead_letter(items[0][0], f"rejected by the store: {type(exc).__name__}: {exc}")
                return True
            log.warning("%s: write of %d events failed, will retry: %s: %s",
                        name, len(items), type(exc).__name__, header_safe(str(exc)))
            for msg, _ in items:
                await msg.nak(delay=nak_delay(msg, self._spec.max_nak_delay_s))
            EVENTS_CONSUMED.labels(name, "retried").inc(len(items))
            return False
        for msg, _ in items:
            await msg.ack()
        EVENTS_CONSUMED.labels(name, "written").inc(len(items))
        BATCH_SIZE.labels(name).observe(len(items))
        _observe_lag_seconds(name, items[-1][0])
        return True

    async def sample_lag(self) -> None:
        """Record how many events of the stream this consumer has not been delivered yet; an
        idle consumer (nothing undelivered or unacked) lags by 0 s."""
        if self._pull is None:
            return
        try:
            info = await self._pull.consumer_info()
        except Exception as exc:
            log.debug("%s: consumer info: %s", self._spec.name, type(exc).__name__)
            return
        CONSUMER_LAG.labels(self._spec.name).set(info.num_pending or 0)
        if not info.num_pending and not info.num_ack_pending:
            CONSUMER_LAG_SECONDS.labels(self._spec.name).set(0.0)

    async def dead_letter(self, msg: Msg, reason: str) -> None:
        name = self._spec.name
        headers = {DLQ_REASON: header_safe(reason), DLQ_SUBJECT: msg.subject, DLQ_CONSUMER: name}
        try:
            meta = msg.metadata
            headers[DLQ_SEQUENCE] = str(meta.sequence.stream)
            headers["Nats-Msg-Id"] = f"dlq.{name}.{meta.stream}.{meta.sequence.stream}"
        except Exception as exc:
            log.debug("%s: no metadata on %s: %s", name, msg.subject, type(exc).__name__)
        if msg.headers and msg.headers.get("Nats-Msg-Id"):
            headers[DLQ_MSG_ID] = header_safe(msg.headers["Nats-Msg-Id"])
        try:
            await self._js.publish(dlq_subject(name), msg.data, headers=headers)
        except Exception as exc:
            log.warning("%s: dead-letter publish failed, will retry: %s", name, type(exc).__name__)
            await msg.nak(delay=nak_delay(msg, self._spec.max_nak_delay_s))
            return
        log.warning("%s: dead-lettered %s: %s", name, msg.subject, headers[DLQ_REASON])
        DEAD_LETTERS.labels(name).inc()
        EVENTS_CONSUMED.labels(name, "dead_lettered").inc()
        await msg.term()


def _observe_lag_seconds(name: str, msg: Msg) -> None:
    """How long the newest event written waited between the stream and the store."""
    try:
        stored = msg.metadata.timestamp
    except Exception:
        return
    if stored is not None:
        CONSUMER_LAG_SECONDS.labels(name).set(max(0.0, (datetime.now(UTC) - stored).total_seconds()))


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
