"""Keys' last-used times, written off the hot path.

A request only notes its key id in memory; every `key_last_used_interval_s` one statement
writes the times noted since (so each key at most once per interval, however busy),
bounded by the key-store timeout. A failed write is logged and dropped: a last-used time
is never worth a failed request or a queue that grows while Postgres is away.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.outage import bounded
from shared.db.tables import api_keys

log = logging.getLogger(__name__)


class LastUsed:
    def __init__(self, engine: AsyncEngine, interval_s: float, timeout_s: float) -> None:
        self._engine = engine
        self._interval = interval_s
        self._timeout = timeout_s
        self._pending: dict[str, datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def touch(self, key_id: str) -> None:
        if key_id != "master":
            self._pending[key_id] = datetime.now(UTC)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="last-used")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception as exc:  # dropped: the next use of the key notes it again
                log.warning("last-used times not written (%s)", type(exc).__name__)

    async def flush(self) -> int:
        pending, self._pending = self._pending, {}
        if not pending:
            return 0
        statement = (update(api_keys).where(api_keys.c.id == bindparam("b_id"))
                     .values(last_used_at=bindparam("b_at")))
        rows = [{"b_id": key_id, "b_at": at} for key_id, at in sorted(pending.items())]

        async def write() -> None:
            async with self._engine.begin() as conn:
                await conn.execute(statement, rows)

        await bounded(write(), self._timeout, "The key store")
        return len(rows)
