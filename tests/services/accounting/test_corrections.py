"""The merge rule of `usage.corrected`: whatever the order of a call's usage event and its
correction, and however often either comes again, the call has one row in the ledger and
one in ClickHouse, with the usage event's tokens and cost and the status the client saw.
Real Postgres and chDB, through write_usage as the consumer calls it."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any, Literal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.accounting.clickhouse_store import COLUMNS, ClickHouseStore
from services.accounting.handlers import write_usage
from services.accounting.intake import parse_audit, parse_usage
from shared.db.tables import spend_ledger
from shared.events import CorrectionData, UsageCorrection, UsageData, UsageEvent
from shared.ids import uuid7
from shared.usage import correction_id

ROUTER_TOKENS = (21, 34)  # what the upstream reported, through the router
INGRESS_TOKENS = (9, 0)  # the ingress's estimate of a call whose router went silent
COST = Decimal("0.000123")


class Call:
    def __init__(self, org_id: str, key_id: str) -> None:
        self.id = uuid7()
        self.org_id = org_id
        self.key_id = key_id

    def usage(self, *, source: str = "router", status: Literal["ok", "error", "cancelled"] = "ok",
              tokens: tuple[int, int] = ROUTER_TOKENS, cost: Decimal = COST) -> UsageEvent:
        prompt, completion = tokens
        return UsageEvent(id=self.id, source=source, org_id=self.org_id, key_id=self.key_id, request_id=self.id,
                          data=UsageData(model="gpt-4o-mini", provider="fake", status=status,
                                         usage_source="upstream" if source == "router" else "estimated",
                                         prompt_tokens=prompt, completion_tokens=completion,
                                         total_tokens=prompt + completion, cost=cost))

    def correction(self, status: Literal["error", "cancelled"] = "error") -> UsageCorrection:
        return UsageCorrection(id=correction_id(self.id), source="ingress", org_id=self.org_id, key_id=self.key_id,
                               request_id=self.id,
                               data=CorrectionData(call_id=self.id, status=status, error_code="bus_unavailable"))


@pytest.fixture
async def store(chdb_dsn: str) -> AsyncIterator[ClickHouseStore]:
    opened = await ClickHouseStore.open(chdb_dsn)
    yield opened
    await opened.close()


@pytest.fixture
async def key_id(harness: Any) -> str:
    return str(await harness.add_key())


async def ledger_rows(engine: AsyncEngine, call_id: str) -> list[tuple[str, int, int, Decimal]]:
    query = select(spend_ledger.c.status, spend_ledger.c.prompt_tokens, spend_ledger.c.completion_tokens,
                   spend_ledger.c.cost).where(spend_ledger.c.event_id == call_id)
    async with engine.connect() as conn:
        return [tuple(row) for row in (await conn.execute(query)).all()]  # type: ignore[misc]


async def analytics_rows(store: ClickHouseStore, call_id: str) -> list[tuple[str, int, int, Decimal]]:
    at = {name: COLUMNS.index(name) for name in ("status", "prompt_tokens", "completion_tokens", "cost")}
    return [(row[at["status"]], row[at["prompt_tokens"]], row[at["completion_tokens"]], row[at["cost"]])
            for row in await store.usage_rows([call_id])]


async def write(store: ClickHouseStore, engine: AsyncEngine, batches: Sequence[Sequence[UsageEvent | UsageCorrection]]) -> None:
    for batch in batches:
        await write_usage(store, engine, batch)


async def assert_one_row(store: ClickHouseStore, engine: AsyncEngine, call: Call, status: str,
                         tokens: tuple[int, int] = ROUTER_TOKENS) -> None:
    expected = [(status, *tokens, COST)]
    assert await ledger_rows(engine, call.id) == expected
    assert await analytics_rows(store, call.id) == expected


ORDERS = {
    "usage, then correction": lambda u, c: [[u], [c]],
    "correction, then usage": lambda u, c: [[c], [u]],
    "both in one batch, usage first": lambda u, c: [[u, c]],
    "both in one batch, correction first": lambda u, c: [[c, u]],
    "usage, correction, both redelivered": lambda u, c: [[u], [c], [u], [c]],
    "correction twice, then usage twice": lambda u, c: [[c], [c], [u], [u]],
    "usage redelivered with the correction": lambda u, c: [[u], [c, u], [u]],
}


@pytest.mark.parametrize("order", ORDERS)
async def test_every_order_ends_in_one_row_with_the_status_the_client_saw(store, engine, harness, key_id,
                                                                           order: str) -> None:
    call = Call(harness.org_id, key_id)
    await write(store, engine, ORDERS[order](call.usage(), call.correction()))
    await assert_one_row(store, engine, call, "error")
    assert await harness.spend(key_id) == COST  # charged once: a status change moves no money


@pytest.mark.parametrize("router_status", ["ok", "cancelled"])
async def test_the_routers_status_is_replaced_whatever_it_was(store, engine, harness, key_id,
                                                              router_status: Literal["ok", "cancelled"]) -> None:
    call = Call(harness.org_id, key_id)  # cancelled: the ingress's cancel reached the router after the bus came back
    await write(store, engine, [[call.usage(status=router_status)], [call.correction()]])
    await assert_one_row(store, engine, call, "error")


@pytest.mark.parametrize("first", ["router", "ingress"])
async def test_the_usage_event_stored_first_gives_the_tokens(store, engine, harness, key_id, first: str) -> None:
    """A silent router and the ingress both publish the call's usage under its id: JetStream
    keeps the first (the other is a duplicate), and the correction gives its status."""
    call = Call(harness.org_id, key_id)
    usage = (call.usage() if first == "router"
             else call.usage(source="ingress", status="error", tokens=INGRESS_TOKENS))
    await write(store, engine, [[call.correction()], [usage], [call.correction()]])
    await assert_one_row(store, engine, call, "error", ROUTER_TOKENS if first == "router" else INGRESS_TOKENS)


async def test_a_correction_alone_charges_nothing_until_its_usage_comes(store, engine, harness, key_id) -> None:
    call = Call(harness.org_id, key_id)  # the router never got the call (or has not published yet)
    await write(store, engine, [[call.correction()], [call.correction()]])
    assert await ledger_rows(engine, call.id) == [] and await analytics_rows(store, call.id) == []
    assert await harness.spend(key_id) == 0
    await write(store, engine, [[call.usage()]])  # long after: the stored correction still applies
    await assert_one_row(store, engine, call, "error")


async def test_the_first_correction_of_a_call_is_kept(store, engine, harness, key_id) -> None:
    call = Call(harness.org_id, key_id)
    await write(store, engine, [[call.correction("error")], [call.usage()], [call.correction("cancelled")]])
    await assert_one_row(store, engine, call, "error")


async def test_other_calls_of_a_batch_keep_their_own_status(store, engine, harness, key_id) -> None:
    cut, served = Call(harness.org_id, key_id), Call(harness.org_id, key_id)
    await write(store, engine, [[cut.usage(), served.usage(), cut.correction()]])
    await assert_one_row(store, engine, cut, "error")
    await assert_one_row(store, engine, served, "ok")


async def test_concurrent_writes_of_the_two_converge(store, engine, harness, key_id) -> None:
    """Two accounting replicas, one with the usage event, one with the correction, at once."""
    calls = [Call(harness.org_id, key_id) for _ in range(12)]
    for n, call in enumerate(calls):
        usage, correction = write_usage(store, engine, [call.usage()]), write_usage(store, engine, [call.correction()])
        await asyncio.gather(*((usage, correction) if n % 2 else (correction, usage)))
    for call in calls:
        await assert_one_row(store, engine, call, "error")
    assert await harness.spend(key_id) == COST * len(calls)


def test_corrections_are_taken_on_the_usage_stream_only() -> None:
    correction = Call("default", "key_x").correction()
    raw = correction.model_dump_json().encode()
    assert parse_usage(raw) == correction
    with pytest.raises(ValueError, match=r"usage\.corrected"):
        parse_audit(raw)
    too_long = raw.replace(correction.data.call_id.encode(), b"c" * 41)
    with pytest.raises(ValueError):
        parse_usage(too_long)


def test_a_correction_has_an_id_of_its_own_the_same_every_time() -> None:
    call_id = uuid7()
    assert correction_id(call_id) == correction_id(call_id) != call_id
    assert correction_id(call_id) != correction_id(uuid7())
    assert uuid.UUID(correction_id(call_id)).version == 5
