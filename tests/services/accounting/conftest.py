"""Fixtures for the accounting tests: real NATS, Postgres and chDB (from tests/conftest.py).

The NATS streams and the durable consumers are shared by the whole session, so every
test works in its own organisation (and keys) and looks only at those.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.accounting.handlers import serve
from shared.db.tables import api_keys, audit_log, spend_ledger
from shared.events import UsageData, UsageEvent
from shared.settings import AccountingSettings, Settings
from shared.subjects import ACCOUNTING_USAGE_QUERY, usage_subject
from shared.usage_report import UsageQuery, UsageReport


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Harness:
    def __init__(self, nc: Client, engine: AsyncEngine, org_id: str) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.engine = engine
        self.org_id = org_id

    def usage(self, key_id: str | None, cost: str, *, model: str = "gpt-4o-mini", tokens: tuple[int, int] = (10, 5),
              **envelope: Any) -> UsageEvent:
        prompt, completion = tokens
        return UsageEvent(source="test", org_id=self.org_id, key_id=key_id, request_id=uuid.uuid4().hex,
                          data=UsageData(model=model, provider="openai", prompt_tokens=prompt,
                                         completion_tokens=completion, total_tokens=prompt + completion,
                                         cost=Decimal(cost)), **envelope)

    async def publish(self, subject: str, body: bytes, msg_id: str | None = None) -> int:
        """Publish with a fresh Nats-Msg-Id unless one is given (so JetStream never dedupes)."""
        ack = await self.js.publish(subject, body, headers={"Nats-Msg-Id": msg_id or uuid.uuid4().hex})
        return ack.seq

    async def publish_usage(self, event: UsageEvent) -> int:
        return await self.publish(usage_subject(event.org_id), event.model_dump_json().encode())

    async def add_key(self) -> str:
        key_id = "key_" + uuid.uuid4().hex[:20]
        async with self.engine.begin() as conn:
            await conn.execute(insert(api_keys).values(
                id=key_id, key_hash=uuid.uuid4().hex + uuid.uuid4().hex, prefix="jg-test",
                name="test", org_id=self.org_id))
        return key_id

    async def spend(self, key_id: str) -> Decimal:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(api_keys.c.spend).where(api_keys.c.id == key_id))).scalar_one()

    async def ledger(self) -> tuple[int, Decimal]:
        query = select(func.count(), func.coalesce(func.sum(spend_ledger.c.cost), 0)).where(
            spend_ledger.c.org_id == self.org_id)
        async with self.engine.connect() as conn:
            count, total = (await conn.execute(query)).one()
        return count, Decimal(total)

    async def audit_rows(self) -> list[Any]:
        query = select(audit_log).where(audit_log.c.org_id == self.org_id).order_by(audit_log.c.event_id)
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def query(self, **fields: Any) -> UsageReport:
        body = UsageQuery(**fields).model_dump_json().encode()
        reply = await self.nc.request(ACCOUNTING_USAGE_QUERY, body, timeout=10)
        return UsageReport.model_validate_json(reply.data)

    async def consumed(self, stream: str, durable: str, seq: int, timeout: float = 30.0) -> None:
        """Wait until the durable consumer has settled (acked or dead-lettered) everything up to `seq`."""
        async def done() -> bool:
            info = await self.js.consumer_info(stream, durable)
            return info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= seq
        await eventually(done, timeout, f"{durable} to settle stream seq {seq}")

    eventually = staticmethod(eventually)


@pytest.fixture
def harness(nc: Client, engine: AsyncEngine) -> Harness:
    return Harness(nc, engine, "org-" + uuid.uuid4().hex[:12])


@pytest.fixture
def settings(nats_url: str, database_url: str, chdb_dsn: str) -> Settings:
    return Settings(nats_url=nats_url, database_url=database_url, clickhouse_url=chdb_dsn,
                    accounting=AccountingSettings(batch_size=50, batch_wait_s=0.05, metrics_port=0, ack_wait_s=3,
                                                  idle_poll_s=0.3, max_nak_delay_s=1, failure_pause_s=0.2))


@asynccontextmanager
async def running(settings: Settings, nc: Client) -> AsyncIterator[asyncio.Task[None]]:
    """serve() as a task, ready once it answers usage queries; stopped cleanly on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))

    async def ready() -> bool:
        if task.done():
            task.result()  # raises the service's error
        try:
            await nc.request(ACCOUNTING_USAGE_QUERY, b"{}", timeout=1)
        except Exception:
            return False
        return True

    try:
        await eventually(ready, 60, "the accounting service to answer")
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


Service = Callable[..., AbstractAsyncContextManager[asyncio.Task[None]]]


@pytest.fixture
def service(settings: Settings, nc: Client) -> Service:
    """`async with service(): ...` runs the accounting service (default: this test's settings)."""
    return lambda override=None: running(override or settings, nc)
