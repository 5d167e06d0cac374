"""`jetgate audit|usage replay` and `export` against real JetStream, Postgres and chDB:
a wiped store is restored to the rows accounting wrote, a second replay changes nothing,
an interrupted replay resumes, an export read back with `--from` restores."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from jetgate.replay.records import read_file
from jetgate.replay.run import ReplayJob, replay
from jetgate.replay.sinks import Sink, Target, open_sink
from jetgate.replay.source import KINDS, Selection
from services.accounting.audit_chain import verify_chain
from services.accounting.clickhouse_store import ClickHouseStore
from services.accounting.usage_query import usage_report
from shared.bus import publish_event
from shared.db.tables import audit_log, spend_ledger
from shared.events import CorrectionData, UsageCorrection
from shared.settings import ReplaySettings, Settings
from shared.subjects import AUDIT_CONSUMER, AUDIT_STREAM, USAGE_CONSUMER, USAGE_STREAM, usage_subject
from shared.usage_report import UsageQuery
from tests.services.accounting.test_audit_chain import audit_events

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def small_batches(settings: Settings, size: int = 7) -> Settings:
    return settings.model_copy(update={"replay": ReplaySettings(fetch_batch=size, write_batch=size,
                                                                fetch_timeout_s=2, progress_interval_s=0)})


def selection(kind: str, org_id: str, since: datetime = EPOCH, until: datetime | None = None) -> Selection:
    return Selection(KINDS[kind], KINDS[kind].subject(org_id), since=since, until=until)


async def table_rows(harness, table) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    query = select(table).where(table.c.org_id == harness.org_id).order_by(table.c.event_id)
    async with harness.engine.connect() as conn:
        return [tuple(row) for row in (await conn.execute(query)).all()]


async def wipe(harness, table) -> None:  # type: ignore[no-untyped-def]
    async with harness.engine.begin() as conn:
        await conn.execute(delete(table).where(table.c.org_id == harness.org_id))


async def published_audit(harness, service, count: int = 40) -> list[tuple[Any, ...]]:
    """Publish audit events, let accounting write them; the rows it wrote."""
    async with service():
        for event in audit_events(harness.org_id, count):
            await publish_event(harness.js, event)
        last = (await harness.js.stream_info(AUDIT_STREAM.name)).state.last_seq
        await harness.consumed(AUDIT_STREAM.name, AUDIT_CONSUMER, last)
    rows = await table_rows(harness, audit_log)
    assert len(rows) == count
    return rows


async def test_replay_restores_a_wiped_audit_log_exactly_and_again_changes_nothing(harness, service, settings) -> None:
    written = await published_audit(harness, service)
    assert (await verify_chain(harness.engine, harness.org_id)).broken is None

    await wipe(harness, audit_log)
    job = ReplayJob(selection("audit", harness.org_id), "postgres", progress=False)
    result = await replay(job, small_batches(settings), harness.js)
    assert (result.read, result.skipped) == (40, 0)
    assert await table_rows(harness, audit_log) == written  # every column: chain included

    again = await replay(job, settings, harness.js)
    assert again.read == 40
    assert await table_rows(harness, audit_log) == written
    assert (await verify_chain(harness.engine, harness.org_id)).broken is None

    # a partial loss (rows in the middle) is restored too, with the same links
    async with harness.engine.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.event_id.in_([written[5][0], written[17][0]])))
    await replay(job, settings, harness.js)
    assert await table_rows(harness, audit_log) == written


async def test_replay_selects_by_org_and_time(harness, service, settings, org_id, tmp_path: Path) -> None:
    await published_audit(harness, service, 6)
    for event in audit_events(org_id, 3):
        await publish_event(harness.js, event)
    out = tmp_path / "other.jsonl"
    await replay(ReplayJob(selection("audit", org_id), "jsonl", out=out, progress=False), settings, harness.js)
    assert [r.subject.split(".")[2] for r in read_file(out)] == [org_id] * 3

    mine = tmp_path / "mine.jsonl"
    await replay(ReplayJob(selection("audit", harness.org_id), "jsonl", out=mine, progress=False), settings, harness.js)
    records = list(read_file(mine))
    assert len(records) == 6 and [r.seq for r in records] == sorted(r.seq for r in records)
    # [since, until) on the time the stream stored each event
    # (the stream keeps nanoseconds, a record microseconds: a bound one microsecond early)
    since, until = records[1].stored - timedelta(microseconds=1), records[4].stored
    window = tmp_path / "window.jsonl"
    job = ReplayJob(selection("audit", harness.org_id, since=since, until=until), "jsonl", out=window, progress=False)
    await replay(job, small_batches(settings, 2), harness.js)
    expected = [r.seq for r in records if since <= r.stored < until]
    assert [r.seq for r in read_file(window)] == expected and 0 < len(expected) < 6
    # the same window read back from the file
    again = tmp_path / "again.jsonl"
    await replay(ReplayJob(job.selection, "jsonl", out=again, from_file=mine, progress=False), settings, None)
    assert again.read_bytes() == window.read_bytes()


class Interrupted(Exception):
    pass


def interrupt_after(batches: int):  # type: ignore[no-untyped-def]
    """A real sink that dies (like a killed process) after writing `batches` batches."""
    async def opener(kind: str, to: str, target: Target) -> Sink:
        sink = await open_sink(kind, to, target)
        left = [batches]
        real_write = sink.write

        async def write(records):  # type: ignore[no-untyped-def]
            if left[0] == 0:
                raise Interrupted()
            left[0] -= 1
            return await real_write(records)

        sink.write = write  # type: ignore[method-assign]
        return sink
    return opener


async def test_interrupted_replay_resumes_from_its_checkpoint(harness, service, settings, tmp_path: Path) -> None:
    written = await published_audit(harness, service, 30)
    fast = small_batches(settings, 4)
    full = tmp_path / "full.jsonl"
    await replay(ReplayJob(selection("audit", harness.org_id), "jsonl", out=full, progress=False), fast, harness.js)

    out, checkpoint = tmp_path / "out.jsonl", tmp_path / "replay.checkpoint"
    job = ReplayJob(selection("audit", harness.org_id), "jsonl", out=out, checkpoint=checkpoint, progress=False)
    with pytest.raises(Interrupted):
        await replay(job, fast, harness.js, sinks=interrupt_after(3))
    with out.open("ab") as handle:  # a batch written but not yet checkpointed when it died
        handle.write(full.read_bytes().splitlines(keepends=True)[12])
    resumed = await replay(job, fast, harness.js)
    assert resumed.resumed_after is not None and resumed.read == 30 - 12
    assert out.read_bytes() == full.read_bytes()

    await wipe(harness, audit_log)
    pg = ReplayJob(selection("audit", harness.org_id), "postgres", checkpoint=tmp_path / "pg.checkpoint", progress=False)
    with pytest.raises(Interrupted):
        await replay(pg, fast, harness.js, sinks=interrupt_after(2))
    assert len(await table_rows(harness, audit_log)) == 8
    await replay(pg, fast, harness.js)
    assert await table_rows(harness, audit_log) == written

    with pytest.raises(SystemExit, match="checkpoint of another replay"):
        await replay(ReplayJob(selection("usage", harness.org_id), "jsonl", out=out, checkpoint=checkpoint,
                               progress=False), fast, harness.js)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
async def test_export_then_from_file_restores(harness, service, settings, tmp_path: Path, suffix: str) -> None:
    written = await published_audit(harness, service, 25)
    export = tmp_path / f"audit{suffix}"
    now = datetime.now(UTC)
    await replay(ReplayJob(selection("audit", harness.org_id, until=now), "jsonl", out=export, progress=False),
                 settings, harness.js)
    assert len(list(read_file(export))) == 25
    await wipe(harness, audit_log)
    job = ReplayJob(selection("audit", harness.org_id), "postgres", from_file=export, progress=False)
    assert (await replay(job, small_batches(settings), None)).read == 25
    assert await table_rows(harness, audit_log) == written
    assert (await verify_chain(harness.engine, harness.org_id)).broken is None


async def test_usage_replay_restores_ledger_and_clickhouse(harness, service, settings, tmp_path: Path) -> None:
    key = await harness.add_key()
    events = [harness.usage(key, f"0.00{i}", model=f"m{i % 3}") for i in range(1, 31)]
    async with service():
        for event in events:
            last = await harness.publish_usage(event)
        await harness.consumed(USAGE_STREAM.name, USAGE_CONSUMER, last)
        before = await harness.query(org_id=harness.org_id, group_by=["model"])
    ledger = await table_rows(harness, spend_ledger)
    spend = await harness.spend(key)
    assert len(ledger) == 30

    await wipe(harness, spend_ledger)
    job = ReplayJob(selection("usage", harness.org_id), "postgres", progress=False)
    await replay(job, small_batches(settings), harness.js)
    await replay(job, settings, harness.js)
    assert await table_rows(harness, spend_ledger) == ledger
    assert await harness.spend(key) == spend  # a replay never charges a key twice

    # ClickHouse: into a fresh chDB (the service is stopped: one process owns a chDB path)
    fresh = settings.model_copy(update={"clickhouse_url": f"chdb://{tmp_path / 'restored'}"})
    ch = ReplayJob(selection("usage", harness.org_id), "clickhouse", progress=False)
    await replay(ch, small_batches(fresh), harness.js)
    await replay(ch, fresh, harness.js)
    store = await ClickHouseStore.open(fresh.require("clickhouse_url"))
    try:
        after = await usage_report(store, UsageQuery(org_id=harness.org_id, group_by=["model"]))
        raw = await store.query("SELECT count() FROM usage_events FINAL WHERE org_id = {org:String}",
                                {"org": harness.org_id})
    finally:
        await store.close()
    assert after.rows == before.rows
    assert raw[0][0] == 30


async def test_usage_replay_applies_corrections_as_accounting_does(harness, service, settings, tmp_path: Path) -> None:
    key = await harness.add_key()
    events = [harness.usage(key, "0.001") for _ in range(4)]
    correction = UsageCorrection(source="ingress", org_id=harness.org_id,
                                 data=CorrectionData(call_id=events[1].id, status="cancelled"))
    async with service():
        await harness.publish(usage_subject(harness.org_id), correction.model_dump_json().encode())  # before its usage
        for event in events:
            last = await harness.publish_usage(event)
        await harness.consumed(USAGE_STREAM.name, USAGE_CONSUMER, last)
        before = await harness.query(org_id=harness.org_id, group_by=["status"])
    ledger = await table_rows(harness, spend_ledger)
    assert sorted(row.status for row in await _ledger_status(harness)) == ["cancelled", "ok", "ok", "ok"]

    await wipe(harness, spend_ledger)
    await replay(ReplayJob(selection("usage", harness.org_id), "postgres", progress=False), settings, harness.js)
    assert await table_rows(harness, spend_ledger) == ledger

    fresh = settings.model_copy(update={"clickhouse_url": f"chdb://{tmp_path / 'restored'}"})
    await replay(ReplayJob(selection("usage", harness.org_id), "clickhouse", progress=False), small_batches(fresh, 2),
                 harness.js)
    store = await ClickHouseStore.open(fresh.require("clickhouse_url"))
    try:
        after = await usage_report(store, UsageQuery(org_id=harness.org_id, group_by=["status"]))
    finally:
        await store.close()
    assert [(r.group, r.requests) for r in after.rows] == [(r.group, r.requests) for r in before.rows]
    assert {r.group["status"] for r in after.rows} == {"cancelled", "ok"}


async def _ledger_status(harness) -> list[Any]:  # type: ignore[no-untyped-def]
    query = select(spend_ledger.c.status).where(spend_ledger.c.org_id == harness.org_id)
    async with harness.engine.connect() as conn:
        return list((await conn.execute(query)).all())
