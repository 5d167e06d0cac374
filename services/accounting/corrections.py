"""The status the client saw wins: `usage.corrected` against the call's one usage row.

A call the ingress ended itself (the bus away past its wait, the router silent) has two
facts that come in any order, each any number of times: its `usage.recorded` (event id =
call id; the tokens, the router's or the ingress's estimate) and its `usage.corrected`
(the status the client saw). The call's row is the usage event's, with the correction's
status:

- a correction is stored in `usage_corrections` (the first kept) and committed before
  anything else is done with it;
- then, and after every batch of usage events has been written to both stores, the calls
  of the batch that have a stored correction get its status in the ledger and in
  ClickHouse (the row read back and written again; ReplacingMergeTree keeps the last).

No lock is needed between accounting replicas: whichever of the two commits last, its
check afterwards sees the other's write, so every order ends with one row per call and the
corrected status. A correction with no usage event leaves no row (a call that never reached
the router is not charged; one that did is, when its event comes). Tokens and cost are
never touched: a key's spend stays the sum of its rows.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import String, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.accounting.clickhouse_store import COLUMNS, ClickHouseStore
from shared.db.outage import bounded
from shared.db.tables import spend_ledger, usage_corrections
from shared.events import UsageCorrection, UsageEvent

_EVENT_ID = COLUMNS.index("event_id")
_STATUS = COLUMNS.index("status")


def correction_row(event: UsageCorrection) -> dict[str, Any]:
    data = event.data
    return {"call_id": data.call_id, "status": data.status, "error_code": data.error_code, "time": event.time}


async def store_corrections(engine: AsyncEngine, events: Sequence[UsageCorrection]) -> None:
    rows = sorted({event.data.call_id: correction_row(event) for event in events}.values(),
                  key=lambda row: row["call_id"])
    statement = insert(usage_corrections).on_conflict_do_nothing(index_elements=[usage_corrections.c.call_id])
    async with engine.begin() as conn:
        await conn.execute(statement, rows)


async def corrected_statuses(engine: AsyncEngine, call_ids: Iterable[str]) -> dict[str, str]:
    """The stored corrections of these calls: call id → the status the client saw."""
    ids = bindparam("ids", sorted(set(call_ids)), type_=ARRAY(String))  # one parameter, however many ids
    query = select(usage_corrections.c.call_id, usage_corrections.c.status).where(
        usage_corrections.c.call_id == any_(ids))
    async with engine.connect() as conn:
        return {call_id: status for call_id, status in (await conn.execute(query)).all()}


async def correct_ledger(engine: AsyncEngine, statuses: Mapping[str, str]) -> None:
    statement = (update(spend_ledger)
                 .where(spend_ledger.c.event_id == bindparam("b_id"), spend_ledger.c.status != bindparam("b_status"))
                 .values(status=bindparam("b_status")))
    async with engine.begin() as conn:
        await conn.execute(statement, [{"b_id": call_id, "b_status": status}
                                       for call_id, status in sorted(statuses.items())])


async def correct_analytics(store: ClickHouseStore, statuses: Mapping[str, str]) -> None:
    fixed = []
    for row in await store.usage_rows(sorted(statuses)):
        status = statuses[row[_EVENT_ID]]
        if row[_STATUS] != status:
            row[_STATUS] = status
            fixed.append(row)
    await store.insert_rows(fixed)


async def reconcile(store: ClickHouseStore, engine: AsyncEngine, usages: Sequence[UsageEvent],
                    corrections: Sequence[UsageCorrection], timeout_s: float) -> None:
    """Store the batch's corrections, then give every call of the batch that has one its
    status, in both stores. Call after the batch's usage events were written."""
    if corrections:
        await bounded(store_corrections(engine, corrections), timeout_s, "The usage corrections")
    call_ids = {event.id for event in usages} | {event.data.call_id for event in corrections}
    if not call_ids:
        return
    statuses = await bounded(corrected_statuses(engine, call_ids), timeout_s, "The usage corrections")
    if statuses:
        await bounded(correct_ledger(engine, statuses), timeout_s, "The spend ledger")
        await correct_analytics(store, statuses)
