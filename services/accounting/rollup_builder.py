"""Rebuilding the rollups' dirty buckets once they are closed (services/accounting/rollups.py).

Every accounting replica runs `maintain_rollups`: at start, then every
`rollup_rebuild_delay_s`, it rebuilds every dirty bucket whose end plus
`rollup_close_grace_s` has passed (so the marks of one interval coalesce into one rebuild,
and a busy open hour is rebuilt once, after it closes). Replicas racing on a bucket do the
work twice and agree on the result. A failure is logged and tried again next time; until
a bucket is rebuilt, queries read its raw rows.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.accounting.clickhouse_store import ClickHouseStore
from services.accounting.rollups import (
    BUILT_TABLE,
    BY_NAME,
    DIRTY_SQL,
    ROLLUPS,
    STATE_SQL,
    closed_condition,
    intervals_of,
    rebuild_sql,
)
from shared.settings import AccountingSettings

log = logging.getLogger(__name__)

INTERVALS_PER_STATEMENT = 200


async def dirty_buckets(store: ClickHouseStore, closed_grace_s: float | None = None) -> dict[str, dict[int, datetime]]:
    """Rollup name → {bucket start (epoch s): its newest mark}; with a grace, only closed buckets."""
    sql = DIRTY_SQL + (closed_condition(closed_grace_s) if closed_grace_s is not None else "")
    found: dict[str, dict[int, datetime]] = defaultdict(dict)
    for name, start, version, _ in await store.query(sql, {}):
        if name in BY_NAME:
            found[name][int(start)] = version
    return dict(found)


@dataclass
class RollupState:
    dirty: set[int] = field(default_factory=set)  # bucket starts, epoch s
    clean: set[int] = field(default_factory=set)  # built, and no mark since


async def rollup_states(store: ClickHouseStore) -> dict[str, RollupState]:
    """Per rollup, its dirty and its clean buckets (any other bucket holds no rows)."""
    states: dict[str, RollupState] = {rollup.name: RollupState() for rollup in ROLLUPS}
    for name, start, marked, built in await store.query(STATE_SQL, {}):
        if name in states:
            (states[name].dirty if marked > built else states[name].clean).add(int(start))
    return states


async def rebuild_due(store: ClickHouseStore, close_grace_s: float) -> int:
    """Rebuild every closed dirty bucket of every rollup; returns how many."""
    done = 0
    for name, marks in (await dirty_buckets(store, close_grace_s)).items():
        rollup = BY_NAME[name]
        intervals = intervals_of(marks, rollup.seconds)
        for first in range(0, len(intervals), INTERVALS_PER_STATEMENT):
            await store.query(rebuild_sql(rollup, intervals[first:first + INTERVALS_PER_STATEMENT]), {})
        built = [[name, datetime.fromtimestamp(start, UTC), version]
                 for start, version in sorted(marks.items())]
        await store.insert(BUILT_TABLE, built, ("rollup_name", "bucket", "version"))
        done += len(marks)
    return done


async def maintain_rollups(store: ClickHouseStore, settings: AccountingSettings, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            rebuilt = await rebuild_due(store, settings.rollup_close_grace_s)
            if rebuilt:
                log.info("rollups: %d bucket(s) rebuilt", rebuilt)
        except Exception as exc:  # ClickHouse away: the raw rows answer meanwhile
            log.warning("rollup rebuild failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.rollup_rebuild_delay_s)
