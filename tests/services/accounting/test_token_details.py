"""A usage event's cached, cache-write and reasoning tokens reach its ClickHouse row and its
ledger row, and stay there when a correction rewrites the row's status; an event of schema 1
without them (an older router) stores 0. Real Postgres and chDB, through write_usage."""
from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.accounting.clickhouse_store import COLUMNS, ClickHouseStore
from services.accounting.handlers import write_usage
from shared.db.tables import spend_ledger
from shared.events import CorrectionData, UsageCorrection, UsageData, UsageEvent, parse_event
from shared.ids import uuid7
from shared.usage import correction_id

DETAILS = ("cached_tokens", "cache_write_tokens", "reasoning_tokens")


@pytest.fixture
async def store(chdb_dsn: str) -> AsyncIterator[ClickHouseStore]:
    opened = await ClickHouseStore.open(chdb_dsn)
    yield opened
    await opened.close()


def event(org_id: str, key_id: str, **details: int) -> UsageEvent:
    call_id = uuid7()
    return UsageEvent(id=call_id, source="router", org_id=org_id, key_id=key_id, request_id=call_id,
                      data=UsageData(model="claude-sonnet", provider="claude", prompt_tokens=2006, completion_tokens=90,
                                     total_tokens=2096, cost=Decimal("0.0037938"), **details))


async def stored(store: ClickHouseStore, engine: AsyncEngine, call_id: str) -> tuple[list[Any], list[Any]]:
    at = [COLUMNS.index(name) for name in ("status", *DETAILS)]
    analytics = [[row[i] for i in at] for row in await store.usage_rows([call_id])]
    query = select(spend_ledger.c.status, *(spend_ledger.c[name] for name in DETAILS)).where(
        spend_ledger.c.event_id == call_id)
    async with engine.connect() as conn:
        ledger = [list(row) for row in (await conn.execute(query)).all()]
    return analytics, ledger


async def test_the_parts_are_stored_in_both_and_kept_by_a_correction(store, engine, harness) -> None:
    key_id = str(await harness.add_key())
    usage = event(harness.org_id, key_id, cached_tokens=1800, cache_write_tokens=200, reasoning_tokens=40)
    await write_usage(store, engine, [usage])
    assert await stored(store, engine, usage.id) == ([["ok", 1800, 200, 40]], [["ok", 1800, 200, 40]])
    correction = UsageCorrection(id=correction_id(usage.id), source="ingress", org_id=harness.org_id, key_id=key_id,
                                 data=CorrectionData(call_id=usage.id, status="error"))
    await write_usage(store, engine, [correction])
    assert await stored(store, engine, usage.id) == ([["error", 1800, 200, 40]], [["error", 1800, 200, 40]])


async def test_an_event_without_them_stores_zeros(store, engine, harness) -> None:
    key_id = str(await harness.add_key())
    usage = event(harness.org_id, key_id)
    raw = orjson.loads(usage.model_dump_json())
    for name in DETAILS:
        del raw["data"][name]  # as a router from before these fields published it
    old = parse_event(orjson.dumps(raw))
    assert isinstance(old, UsageEvent) and old.schema_version == 1
    await write_usage(store, engine, [old])
    assert await stored(store, engine, usage.id) == ([["ok", 0, 0, 0]], [["ok", 0, 0, 0]])
