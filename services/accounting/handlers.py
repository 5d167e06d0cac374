"""Wiring: the two durable consumers and the usage-query responder.

usage  (JETGATE_USAGE, durable `accounting-usage`) → ClickHouse + Postgres spend ledger
audit  (JETGATE_AUDIT, durable `accounting-audit`) → Postgres audit log, hash-chained per org
query  (`jetgate.rpc.accounting.usage`, queue `accounting`) → UsageReport from ClickHouse
rollups: dirty closed buckets rebuilt in the background (services/accounting/rollup_builder.py)
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncEngine

from services.accounting.audit_chain import Sequenced, parse_audit_msg, record_chained_audit
from services.accounting.clickhouse_store import ClickHouseStore
from services.accounting.consumer import BatchConsumer, ConsumerSpec
from services.accounting.corrections import reconcile
from services.accounting.intake import parse_usage
from services.accounting.ledger import record_spend
from services.accounting.rollup_builder import maintain_rollups
from services.accounting.usage_query import answer
from shared.bus import connect, ensure_streams, jetstream
from shared.config_events import announce_config
from shared.db.engine import make_engine
from shared.db.outage import bounded
from shared.events import UsageCorrection, UsageEvent
from shared.metrics_server import start_metrics_server
from shared.publisher import EventPublisher
from shared.settings import AccountingSettings, Settings
from shared.subjects import (
    ACCOUNTING_QUEUE,
    ACCOUNTING_USAGE_QUERY,
    AUDIT_CONSUMER,
    AUDIT_STREAM,
    USAGE_CONSUMER,
    USAGE_STREAM,
)

log = logging.getLogger(__name__)


async def write_usage(store: ClickHouseStore, engine: AsyncEngine, events: Sequence[UsageEvent | UsageCorrection],
                      timeout_s: float = AccountingSettings().write_timeout_s) -> None:
    """Both stores, concurrently; raises the first failure once both have finished. The
    ledger write is bounded by the Postgres timeouts: a stalled database fails the batch
    (nak, redelivered later) instead of holding the consumer. Then the corrections: the
    status the client saw wins (services/accounting/corrections.py)."""
    usages = [event for event in events if isinstance(event, UsageEvent)]
    corrections = [event for event in events if isinstance(event, UsageCorrection)]
    if usages:
        ledger = bounded(record_spend(engine, usages), timeout_s, "The spend ledger")
        results = await asyncio.gather(store.insert_usage(usages), ledger, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
    await reconcile(store, engine, usages, corrections, timeout_s)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    start_metrics_server(settings.accounting.metrics_host, settings.accounting.metrics_port, "accounting")
    nc = await connect(settings.require("nats_url"), "jetgate-accounting", settings.bus)
    engine = make_engine(settings.require("database_url"), postgres=settings.postgres)  # writes time out, then nak
    store: ClickHouseStore | None = None
    consumers: list[BatchConsumer[Any]] = []
    rollups: asyncio.Task[None] | None = None
    events: EventPublisher | None = None
    try:
        js = jetstream(nc, settings.bus)
        await ensure_streams(js, settings.stream_replicas, settings.stream_limits())
        events = EventPublisher(js, settings.events)
        store = await ClickHouseStore.open(settings.require("clickhouse_url"), settings.accounting.rollup_close_grace_s)
        ch = store

        async def write_audit(items: Sequence[Sequenced]) -> None:
            await bounded(record_chained_audit(engine, items), settings.accounting.write_timeout_s, "The audit log")

        async def on_query(msg: Msg) -> None:
            if msg.reply:
                await msg.respond(await answer(ch, msg.data, nc.max_payload))

        consumers += [
            BatchConsumer(js, ConsumerSpec.from_settings(USAGE_CONSUMER, USAGE_STREAM, settings.accounting),
                          parse_usage, lambda events: write_usage(ch, engine, events, settings.accounting.write_timeout_s)),
            BatchConsumer(js, ConsumerSpec.from_settings(AUDIT_CONSUMER, AUDIT_STREAM, settings.accounting),
                          None, write_audit, parse_msg=parse_audit_msg),
        ]
        for consumer in consumers:
            await consumer.subscribe()
        await nc.subscribe(ACCOUNTING_USAGE_QUERY, queue=ACCOUNTING_QUEUE, cb=on_query)
        rollups = asyncio.create_task(maintain_rollups(ch, settings.accounting, stop))
        await announce_config(js, events.emit, "accounting", None, settings)
        log.info("accounting ready")
        await _run_until_stopped(stop, consumers, settings.accounting.lag_interval_s)
    finally:
        # The consumers have settled what they were sent (run() returns after that): drop their
        # inboxes, then drain the rest: it flushes the acks and lets in-flight queries answer.
        for consumer in consumers:
            await consumer.close()
        if rollups is not None:
            rollups.cancel()
            await asyncio.gather(rollups, return_exceptions=True)
        if events is not None:
            await events.flush()  # this process's config.loaded
        try:
            await nc.drain()
        except Exception as exc:
            log.warning("nats drain: %s", type(exc).__name__)
        if store is not None:
            await store.close()
        await engine.dispose()
        log.info("accounting stopped")


async def _sample_lag(consumers: Sequence[BatchConsumer[Any]], every_s: float) -> None:
    while True:
        for consumer in consumers:
            await consumer.sample_lag()
        await asyncio.sleep(every_s)


async def _run_until_stopped(stop: asyncio.Event, consumers: Sequence[BatchConsumer[Any]], lag_every_s: float) -> None:
    """Run the consumers until `stop`; if one dies, stop the others and raise its error."""
    halt = asyncio.Event()
    tasks = [asyncio.create_task(consumer.run(halt)) for consumer in consumers]
    lag = asyncio.create_task(_sample_lag(consumers, lag_every_s))
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        halt.set()
        waiter.cancel()
        lag.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
