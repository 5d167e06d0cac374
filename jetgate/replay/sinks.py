"""Where a replay writes, one table of (stream kind, target) → sink.

Database sinks parse each event exactly as accounting does (services/accounting/intake.py)
and write it with accounting's own writers, so a replayed row is the row accounting
writes: the audit log through the hash-chained writer (services/accounting/audit_chain.py),
usage through the ClickHouse store's insert and the spend ledger's row. Every write is
idempotent on the event id. An event accounting would dead-letter is skipped and counted.

The spend ledger is restored row by row only: a replay never adds to a key's running
`spend` (it already holds what the ledger rows it lost had added). `usage.corrected`
events are applied as accounting applies them (services/accounting/corrections.py).
"""
from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from jetgate.replay.records import JsonlWriter, ParquetWriter, Record, is_parquet
from services.accounting.audit_chain import Sequenced, record_chained_audit
from services.accounting.clickhouse_store import ClickHouseStore
from services.accounting.corrections import correct_analytics, correct_ledger, corrected_statuses, store_corrections
from services.accounting.intake import parse_audit, parse_usage
from services.accounting.ledger import ledger_row, unique
from shared.db.engine import make_engine
from shared.db.outage import bounded
from shared.db.tables import spend_ledger
from shared.events import UsageCorrection, UsageEvent
from shared.settings import Settings

T = TypeVar("T")


class Sink(Protocol):
    async def write(self, records: list[Record]) -> int:
        """Write a batch; returns how many events it skipped (would be dead-lettered)."""

    async def flush(self) -> int | None:
        """Make what was written durable; a file sink returns its length (the resume offset)."""

    async def close(self) -> None: ...


@dataclass
class Target:
    """What a sink needs: the settings (server URLs), and the file for file sinks."""

    settings: Settings
    out: Path | None = None
    resume_offset: int | None = None


def _parsed(records: list[Record], parse: Callable[[bytes], T]) -> tuple[list[tuple[Record, T]], int]:
    good: list[tuple[Record, T]] = []
    for record in records:
        try:
            good.append((record, parse(record.data)))
        except ValueError:  # pydantic's ValidationError is a ValueError
            continue
    return good, len(records) - len(good)


class _EngineSink:
    def __init__(self, target: Target) -> None:
        settings = target.settings
        self._engine: AsyncEngine = make_engine(settings.require("database_url"), pool_size=1, postgres=settings.postgres)
        self._timeout_s = settings.accounting.write_timeout_s

    async def _bounded(self, work: Awaitable[T], what: str) -> T:
        return await bounded(work, self._timeout_s, what)

    async def flush(self) -> int | None:
        return None

    async def close(self) -> None:
        await self._engine.dispose()


class AuditPostgres(_EngineSink):
    async def write(self, records: list[Record]) -> int:
        items, skipped = _parsed(records, parse_audit)
        await self._bounded(record_chained_audit(self._engine, [Sequenced(r.seq, e) for r, e in items]), "The audit log")
        return skipped


async def restore_ledger(engine: AsyncEngine, events: list[UsageEvent]) -> int:
    """Insert the spend ledger rows that are missing (accounting's rows); keys' spend untouched."""
    rows = [ledger_row(event) for event in unique(events)]
    if not rows:
        return 0
    statement = (insert(spend_ledger).on_conflict_do_nothing(index_elements=[spend_ledger.c.event_id])
                 .returning(spend_ledger.c.event_id))
    async with engine.begin() as conn:
        return len((await conn.execute(statement, rows)).all())


def _split(events: list[UsageEvent | UsageCorrection]) -> tuple[list[UsageEvent], list[UsageCorrection]]:
    return ([e for e in events if isinstance(e, UsageEvent)], [e for e in events if isinstance(e, UsageCorrection)])


class UsagePostgres(_EngineSink):
    """Ledger rows, then `usage.corrected` as accounting applies it (the status the client saw)."""

    async def write(self, records: list[Record]) -> int:
        items, skipped = _parsed(records, parse_usage)
        usages, corrections = _split([e for _, e in items])
        await self._bounded(restore_ledger(self._engine, usages), "The spend ledger")
        if corrections:
            await self._bounded(store_corrections(self._engine, corrections), "The usage corrections")
        call_ids = {e.id for e in usages} | {c.data.call_id for c in corrections}
        if call_ids:
            statuses = await self._bounded(corrected_statuses(self._engine, call_ids), "The usage corrections")
            if statuses:
                await self._bounded(correct_ledger(self._engine, statuses), "The spend ledger")
        return skipped


class UsageClickhouse:
    """Needs the ClickHouse server, or the chDB path with the gateway stopped (one process owns it).
    Corrections are those this replay reads (the first of each call kept, as accounting does)."""

    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store
        self._statuses: dict[str, str] = {}

    async def write(self, records: list[Record]) -> int:
        items, skipped = _parsed(records, parse_usage)
        usages, corrections = _split([e for _, e in items])
        await self._store.insert_usage(usages)
        for correction in corrections:
            self._statuses.setdefault(correction.data.call_id, correction.data.status)
        touched = {e.id for e in usages} | {c.data.call_id for c in corrections}
        statuses = {call_id: self._statuses[call_id] for call_id in touched if call_id in self._statuses}
        if statuses:
            await correct_analytics(self._store, statuses)
        return skipped

    async def flush(self) -> int | None:
        return None

    async def close(self) -> None:
        await self._store.close()


class FileSink:
    def __init__(self, target: Target) -> None:
        if target.out is None:
            raise SystemExit("--out FILE is needed to write a file")
        self._writer: JsonlWriter | ParquetWriter = (
            ParquetWriter(target.out) if is_parquet(target.out) else JsonlWriter.open(target.out, target.resume_offset))

    async def write(self, records: list[Record]) -> int:
        self._writer.write(records)
        return 0

    async def flush(self) -> int | None:
        return self._writer.flush()

    async def close(self) -> None:
        self._writer.close()


class StdoutSink:
    """One event JSON a line (the events alone, for `jq`; `--to jsonl` keeps what `--from` reads)."""

    async def write(self, records: list[Record]) -> int:
        out = sys.stdout.buffer
        out.write(b"".join(record.data.rstrip(b"\n") + b"\n" for record in records))
        return 0

    async def flush(self) -> int | None:
        sys.stdout.buffer.flush()
        return None

    async def close(self) -> None:
        sys.stdout.buffer.flush()


async def _clickhouse(target: Target) -> Sink:
    return UsageClickhouse(await ClickHouseStore.open(target.settings.require("clickhouse_url")))


async def _sync(factory: Callable[[Target], Sink], target: Target) -> Sink:
    return factory(target)


SinkFactory = Callable[[Target], Awaitable[Sink]]

SINKS: dict[str, dict[str, SinkFactory]] = {
    "audit": {
        "postgres": lambda t: _sync(AuditPostgres, t),
        "jsonl": lambda t: _sync(FileSink, t),
        "stdout": lambda t: _sync(lambda _t: StdoutSink(), t),
    },
    "usage": {
        "clickhouse": _clickhouse,
        "postgres": lambda t: _sync(UsagePostgres, t),
        "jsonl": lambda t: _sync(FileSink, t),
        "stdout": lambda t: _sync(lambda _t: StdoutSink(), t),
    },
}


async def open_sink(kind: str, to: str, target: Target) -> Sink:
    return await SINKS[kind][to](target)
