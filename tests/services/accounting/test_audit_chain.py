"""The audit log's hash chain on real Postgres: written per org in stream order whatever
the order of the writes, and `verify_chain` catches an altered, a deleted and a
reordered row."""
from __future__ import annotations

import asyncio
import random

from sqlalchemy import delete, select, update

from services.accounting.audit_chain import GENESIS, Sequenced, record_chained_audit, verify_chain
from shared.db.tables import audit_log
from shared.events import KeyData, KeyEvent, RequestData, RequestEvent


def audit_events(org_id: str, count: int) -> list[RequestEvent | KeyEvent]:
    events: list[RequestEvent | KeyEvent] = []
    for i in range(count):
        if i % 5 == 4:
            events.append(KeyEvent(type="key.created", source="cli", org_id=org_id, key_id=f"key_{i}",
                                   data=KeyData(name=f"k{i}", actor_key_id="cli", models=["a", "b"])))
        else:
            events.append(RequestEvent(type="request.completed", source="ingress", org_id=org_id, key_id="key_1",
                                       request_id=f"req-{i}", data=RequestData(path="/v1/chat/completions",
                                                                               model="m", status_code=200,
                                                                               latency_ms=1.5 + i)))
    return events


async def chain(harness) -> list[tuple[int, str, str, str]]:
    query = (select(audit_log.c.stream_seq, audit_log.c.event_id, audit_log.c.prev_hash, audit_log.c.hash)
             .where(audit_log.c.org_id == harness.org_id).order_by(audit_log.c.stream_seq))
    async with harness.engine.connect() as conn:
        return [tuple(row) for row in (await conn.execute(query)).all()]


async def test_chain_links_each_row_to_the_previous_of_its_org(harness) -> None:
    events = audit_events(harness.org_id, 12)
    items = [Sequenced(10 + 3 * i, event) for i, event in enumerate(events)]
    assert await record_chained_audit(harness.engine, items[:5]) == 5
    assert await record_chained_audit(harness.engine, items[3:] + items[:2]) == 7  # redelivered ones skipped
    rows = await chain(harness)
    assert [row[1] for row in rows] == [event.id for event in events]
    assert rows[0][2] == GENESIS
    assert all(rows[i][2] == rows[i - 1][3] for i in range(1, len(rows)))
    report = await verify_chain(harness.engine, harness.org_id)
    assert report.broken is None and report.rows == 12 and report.orgs == 1


async def test_any_write_order_gives_the_stream_order_chain(harness) -> None:
    """Two replicas writing interleaved batches, late batches first, at once: the chain is
    the one written in stream order."""
    events = audit_events(harness.org_id, 20)
    items = [Sequenced(i + 1, event) for i, event in enumerate(events)]
    batches = [items[i:i + 4] for i in range(0, 20, 4)]
    random.Random(7).shuffle(batches)
    await record_chained_audit(harness.engine, batches[0])
    await asyncio.gather(*(record_chained_audit(harness.engine, batch) for batch in batches[1:]))
    shuffled = await chain(harness)
    assert [row[0] for row in shuffled] == list(range(1, 21))
    assert (await verify_chain(harness.engine, harness.org_id)).broken is None

    async with harness.engine.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.org_id == harness.org_id))
    await record_chained_audit(harness.engine, items)
    assert await chain(harness) == shuffled


async def test_verify_catches_altered_deleted_and_reordered_rows(harness) -> None:
    events = audit_events(harness.org_id, 8)
    await record_chained_audit(harness.engine, [Sequenced(i + 1, e) for i, e in enumerate(events)])
    assert (await verify_chain(harness.engine, harness.org_id)).broken is None

    async def execute(statement) -> None:  # type: ignore[no-untyped-def]
        async with harness.engine.begin() as conn:
            await conn.execute(statement)

    mine = audit_log.c.org_id == harness.org_id
    # altered: one field of one row's data
    original = (await harness.audit_rows())
    third = next(row for row in original if row.event_id == events[2].id)
    await execute(update(audit_log).where(audit_log.c.event_id == third.event_id)
                  .values(data={**third.data, "status_code": 500}))
    broken = (await verify_chain(harness.engine, harness.org_id)).broken
    assert broken is not None and (broken.stream_seq, broken.event_id) == (3, third.event_id)
    assert "altered" in broken.reason
    await execute(update(audit_log).where(audit_log.c.event_id == third.event_id).values(data=third.data))
    assert (await verify_chain(harness.engine, harness.org_id)).broken is None

    # reordered: two rows swap places in the stream order
    await execute(update(audit_log).where(mine, audit_log.c.stream_seq == 5).values(stream_seq=-5))
    await execute(update(audit_log).where(mine, audit_log.c.stream_seq == 6).values(stream_seq=5))
    await execute(update(audit_log).where(mine, audit_log.c.stream_seq == -5).values(stream_seq=6))
    broken = (await verify_chain(harness.engine, harness.org_id)).broken
    assert broken is not None and broken.stream_seq == 5 and broken.event_id == events[5].id
    await execute(update(audit_log).where(mine, audit_log.c.stream_seq == 5).values(stream_seq=-5))
    await execute(update(audit_log).where(mine, audit_log.c.stream_seq == 6).values(stream_seq=5))
    await execute(update(audit_log).where(mine, audit_log.c.stream_seq == -5).values(stream_seq=6))
    assert (await verify_chain(harness.engine, harness.org_id)).broken is None

    # deleted: a row in the middle, then the first
    await execute(delete(audit_log).where(audit_log.c.event_id == events[3].id))
    broken = (await verify_chain(harness.engine, harness.org_id)).broken
    assert broken is not None and (broken.stream_seq, broken.event_id) == (5, events[4].id)
    assert "deleted" in broken.reason
    await execute(delete(audit_log).where(audit_log.c.event_id == events[0].id))
    broken = (await verify_chain(harness.engine, harness.org_id)).broken
    assert broken is not None and broken.stream_seq == 2 and "first row" in broken.reason

    # re-writing the lost rows (what a replay does) heals the chain: the same hashes as before
    await record_chained_audit(harness.engine, [Sequenced(1, events[0]), Sequenced(4, events[3])])
    assert (await verify_chain(harness.engine, harness.org_id)).broken is None
    assert sorted((r.event_id, r.hash) for r in await harness.audit_rows()) == sorted(
        (r.event_id, r.hash) for r in original)
