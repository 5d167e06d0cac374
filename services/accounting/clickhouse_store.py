"""Usage analytics in ClickHouse: the table, batch inserts, aggregate queries.

The same code serves embedded chDB (`chdb:///path`, in-process; one process owns the
path) and a ClickHouse server (`http://host:8123[/db]`). clickhouse-connect's client is
synchronous and chDB is not safe for concurrent use, so every call runs on one dedicated
thread, one at a time.

The schema is numbered migrations (clickhouse_migrations.py), applied at open.
Duplicates (redelivery, replay) collapse: ReplacingMergeTree keyed on the event id, and
every query reads with FINAL. Every write of rows marks the rollup buckets it touched
dirty, after the rows and before returning (services/accounting/rollups.py).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from services.accounting.clickhouse_migrations import TABLE, apply_migrations
from services.accounting.rollup_marks import Marks
from services.accounting.rollups import DIRTY_TABLE
from shared.events import UsageEvent

__all__ = ["COLUMNS", "TABLE", "ClickHouseStore", "usage_row"]

R = TypeVar("R")

COLUMNS = (
    "event_id", "time", "org_id", "team_id", "user_id", "key_id", "request_id", "model", "provider",
    "deployment_model", "endpoint", "stream", "status", "usage_source", "prompt_tokens",
    "completion_tokens", "total_tokens", "cost", "latency_ms", "attempts",
    "cached_tokens", "cache_write_tokens", "reasoning_tokens",
)
_TIME = COLUMNS.index("time")


def usage_row(event: UsageEvent) -> list[Any]:
    data = event.data
    return [
        event.id, event.time, event.org_id, event.team_id or "", getattr(event, "user_id", None) or "", event.key_id or "",
        event.request_id or "", data.model, data.provider or "", data.deployment_model or "",
        data.endpoint, data.stream, data.status, data.usage_source, data.prompt_tokens,
        data.completion_tokens, data.total_tokens, data.cost, data.latency_ms, data.attempts,
        data.cached_tokens, data.cache_write_tokens, data.reasoning_tokens,
    ]


class ClickHouseStore:
    def __init__(self, client: Client, executor: ThreadPoolExecutor, close_grace_s: float | None = None) -> None:
        self._client = client
        self._executor = executor
        self._marks = Marks(close_grace_s)

    @classmethod
    async def open(cls, url: str, close_grace_s: float | None = None) -> ClickHouseStore:
        """Connect and bring the schema up to date (services/accounting/clickhouse_migrations.py).
        `close_grace_s`: the rollup builders' (services/accounting/rollup_marks.py); None, mark
        every write."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

        def connect() -> Client:
            client = clickhouse_connect.get_client(dsn=url)
            apply_migrations(client)
            return client

        try:
            client = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(client, executor, close_grace_s)

    async def _call(self, fn: Callable[[], R]) -> R:
        # One thread, so one call at a time, even when an awaiting caller is cancelled.
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def insert_usage(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        await self._write([usage_row(event) for event in events])

    async def usage_rows(self, event_ids: Sequence[str]) -> list[list[Any]]:
        """The stored rows of these events (COLUMNS order), duplicates collapsed."""
        if not event_ids:
            return []
        sql = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} FINAL WHERE event_id IN {{ids:Array(String)}}"
        return [list(row) for row in await self.query(sql, {"ids": list(event_ids)})]

    async def insert_rows(self, rows: Sequence[list[Any]]) -> None:
        """Rows again (COLUMNS order): each replaces the stored row of its event."""
        if rows:
            await self._write(list(rows))

    async def _write(self, rows: list[list[Any]]) -> None:
        """The rows, then the marks of their rollup buckets: a mark is only ever newer than its rows."""
        def write() -> None:
            self._client.insert(TABLE, rows, column_names=COLUMNS)
            marks = self._marks.due(row[_TIME] for row in rows)
            if marks:
                self._client.insert(DIRTY_TABLE, marks, column_names=("rollup_name", "bucket"))
                self._marks.written(marks)

        await self._call(write)

    async def insert(self, table: str, rows: Sequence[Sequence[Any]], column_names: Sequence[str]) -> None:
        if rows:
            await self._call(lambda: self._client.insert(table, list(rows), column_names=list(column_names)))

    async def query(self, sql: str, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        result = await self._call(lambda: self._client.query(sql, parameters=dict(parameters)))
        return [tuple(row) for row in result.result_rows]

    async def close(self) -> None:
        try:
            await self._call(self._client.close)
        finally:
            self._executor.shutdown(wait=True)
