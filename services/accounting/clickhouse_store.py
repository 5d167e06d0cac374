"""Usage analytics in ClickHouse: the table, batch inserts, aggregate queries.

The same code serves embedded chDB (`chdb:///path`, in-process; one process owns the
path) and a ClickHouse server (`http://host:8123[/db]`). clickhouse-connect's client is
synchronous and chDB is not safe for concurrent use, so every call runs on one dedicated
thread, one at a time.

Duplicates (redelivery, replay) collapse: ReplacingMergeTree keyed on the event id, and
every query reads with FINAL.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from shared.events import UsageEvent

R = TypeVar("R")

TABLE = "usage_events"

DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    event_id String,
    time DateTime64(3, 'UTC'),
    org_id LowCardinality(String),
    team_id String,
    key_id String,
    request_id String,
    model LowCardinality(String),
    provider LowCardinality(String),
    deployment_model LowCardinality(String),
    endpoint LowCardinality(String),
    stream Bool,
    status LowCardinality(String),
    usage_source LowCardinality(String),
    prompt_tokens UInt32,
    completion_tokens UInt32,
    total_tokens UInt32,
    cost Decimal(38, 12),
    latency_ms Float64,
    attempts UInt16,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (org_id, toDate(time), key_id, model, event_id)
"""

COLUMNS = (
    "event_id", "time", "org_id", "team_id", "key_id", "request_id", "model", "provider",
    "deployment_model", "endpoint", "stream", "status", "usage_source", "prompt_tokens",
    "completion_tokens", "total_tokens", "cost", "latency_ms", "attempts",
)


def usage_row(event: UsageEvent) -> list[Any]:
    data = event.data
    return [
        event.id, event.time, event.org_id, event.team_id or "", event.key_id or "",
        event.request_id or "", data.model, data.provider or "", data.deployment_model or "",
        data.endpoint, data.stream, data.status, data.usage_source, data.prompt_tokens,
        data.completion_tokens, data.total_tokens, data.cost, data.latency_ms, data.attempts,
    ]


class ClickHouseStore:
    def __init__(self, client: Client, executor: ThreadPoolExecutor) -> None:
        self._client = client
        self._executor = executor

    @classmethod
    async def open(cls, url: str) -> ClickHouseStore:
        """Connect and create the table if it is missing."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

        def connect() -> Client:
            client = clickhouse_connect.get_client(dsn=url)
            client.command(DDL)
            return client

        try:
            client = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(client, executor)

    async def _call(self, fn: Callable[[], R]) -> R:
        # One thread, so one call at a time, even when an awaiting caller is cancelled.
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def insert_usage(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        rows = [usage_row(event) for event in events]
        await self._call(lambda: self._client.insert(TABLE, rows, column_names=COLUMNS))

    async def usage_rows(self, event_ids: Sequence[str]) -> list[list[Any]]:
        """The stored rows of these events (COLUMNS order), duplicates collapsed."""
        if not event_ids:
            return []
        sql = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} FINAL WHERE event_id IN {{ids:Array(String)}}"
        return [list(row) for row in await self.query(sql, {"ids": list(event_ids)})]

    async def insert_rows(self, rows: Sequence[list[Any]]) -> None:
        """Rows again (COLUMNS order): each replaces the stored row of its event."""
        if rows:
            await self._call(lambda: self._client.insert(TABLE, list(rows), column_names=COLUMNS))

    async def query(self, sql: str, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        result = await self._call(lambda: self._client.query(sql, parameters=dict(parameters)))
        return [tuple(row) for row in result.result_rows]

    async def close(self) -> None:
        try:
            await self._call(self._client.close)
        finally:
            self._executor.shutdown(wait=True)
