"""Usage rollups: per time bucket and dimensions, the sums and latency sketch of the raw rows.

A rollup is never fed by a materialised view (that fires on every insert, so a redelivered
or replayed event would count twice). It is recomputed, one bucket at a time, from the
deduplicated raw table (`usage_events FINAL`):

- every write of raw rows (`ClickHouseStore.insert_usage`, `insert_rows`) is followed, before
  the batch is acknowledged, by a mark in `usage_rollup_dirty` for each (rollup_name, bucket) it
  touched, versioned by the server's clock at the mark's insert (`now64(6)`);
- the builder (rollup_builder.py) takes the dirty buckets that are closed (their end plus a
  grace is past), notes the newest mark `v` of each, recomputes the bucket from the raw rows,
  and records `v` in `usage_rollup_built`. A bucket is clean while no mark is newer than its
  build: every mark not newer than `v` was inserted after its rows were, and the rebuild read
  the raw table after `v`, so it saw those rows. A mark that comes later makes it dirty again;
- a query (usage_plan.py) reads a rollup only for clean buckets, the raw rows for the rest.

Rollup rows are keyed by bucket and dimensions (ReplacingMergeTree on the build's time, read
with FINAL): a rebuild replaces every group of the bucket, and two builders racing on one
bucket leave the later one's rows, which read the raw table later. An event's dimensions and
time never change (a correction changes only its status, which is counted, not a dimension),
so a group never disappears from a bucket and nothing needs deleting.

Percentiles from a rollup come from a t-digest sketch (`quantilesTDigest`): approximate.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from services.accounting.clickhouse_tables import TABLE

DIRTY_TABLE = "usage_rollup_dirty"
BUILT_TABLE = "usage_rollup_built"
QUANTILES = "quantilesTDigest(0.5, 0.95, 0.99)"
Grain = Literal["hour", "day"]
GRAIN_SECONDS: dict[Grain, int] = {"hour": 3600, "day": 86400}
START_OF: dict[Grain, str] = {"hour": "toStartOfHour", "day": "toStartOfDay"}
# parts of the prompt (read from, written to a cache) and of the completion (reasoning); migration 5
TOKEN_DETAILS = ("cached_tokens", "cache_write_tokens", "reasoning_tokens")
MEASURES = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", *TOKEN_DETAILS, "cost", "latency")
# every event has one time, so its duplicates share a partition: FINAL need not merge across them
FINAL_SETTINGS = " SETTINGS do_not_merge_across_partitions_select_final = 1"


@dataclass(frozen=True)
class Rollup:
    name: str
    grain: Grain
    dims: tuple[str, ...]  # raw columns, kept as they are

    @property
    def table(self) -> str:
        return f"usage_rollup_{self.name}"

    @property
    def seconds(self) -> int:
        return GRAIN_SECONDS[self.grain]


# Smallest first: of those covering a query equally well, the planner takes the first
# (usage_plan.py). Sizes for the benchmark's 10 M rows (20 orgs, 500 keys, 8 models, 60
# days; bench/usage_query.py): `daily` 2,400 rows, `hourly_models` 11,520 (whole-gateway
# hours: merging sketches is what a query over a rollup spends its time on, so fewer rows
# per hour pay), `hourly` 57,600, `daily_keys` 360,000. A rollup added later needs its own
# migration (migration 3 creates these, migration 5 adds their TOKEN_DETAILS: table_ddl, then
# add_details_sql).
ROLLUPS: tuple[Rollup, ...] = (
    Rollup("daily", "day", ("org_id", "model", "provider")),
    Rollup("hourly_models", "hour", ("model", "provider")),
    Rollup("hourly", "hour", ("org_id", "model", "provider")),
    Rollup("daily_keys", "day", ("org_id", "team_id", "user_id", "key_id", "model", "provider")),
)
BY_NAME = {rollup.name: rollup for rollup in ROLLUPS}

DIM_TYPES = {"org_id": "LowCardinality(String)", "model": "LowCardinality(String)",
             "provider": "LowCardinality(String)"}


def table_ddl(rollup: Rollup) -> str:
    dims = ",\n    ".join(f"{dim} {DIM_TYPES.get(dim, 'String')}" for dim in rollup.dims)
    # an org's queries read its rows only
    order = ["org_id", "bucket", *rollup.dims[1:]] if rollup.dims[0] == "org_id" else ["bucket", *rollup.dims]
    return f"""
CREATE TABLE IF NOT EXISTS {rollup.table} (
    bucket DateTime('UTC'),
    {dims},
    requests UInt64,
    errors UInt64,
    prompt_tokens UInt64,
    completion_tokens UInt64,
    total_tokens UInt64,
    cost Decimal(38, 12),
    latency AggregateFunction({QUANTILES}, Float64),
    built_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(built_at)
PARTITION BY toYYYYMM(bucket)
ORDER BY ({', '.join(order)})
"""


STATE_DDL = (f"""
CREATE TABLE IF NOT EXISTS {DIRTY_TABLE} (
    rollup_name LowCardinality(String),
    bucket DateTime('UTC'),
    version DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (rollup_name, bucket)
""", f"""
CREATE TABLE IF NOT EXISTS {BUILT_TABLE} (
    rollup_name LowCardinality(String),
    bucket DateTime('UTC'),
    version DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (rollup_name, bucket)
""")


def add_details_sql(rollup: Rollup) -> tuple[str, ...]:
    """The TOKEN_DETAILS sums for a table of table_ddl's shape (0 until its buckets are rebuilt)."""
    after = ("total_tokens", *TOKEN_DETAILS)
    return tuple(f"ALTER TABLE {rollup.table} ADD COLUMN IF NOT EXISTS {column} UInt64 DEFAULT 0 AFTER {previous}"
                 for column, previous in zip(TOKEN_DETAILS, after, strict=False))


def mark_everything_sql(rollup: Rollup) -> str:
    """Every bucket holding raw rows, dirty (a new rollup, or raw rows written around the store)."""
    return (f"INSERT INTO {DIRTY_TABLE} (rollup_name, bucket) SELECT '{rollup.name}', {START_OF[rollup.grain]}(time) AS b "
            f"FROM {TABLE} GROUP BY b")


def bucket_start(moment: datetime, seconds: int) -> datetime:
    """The bucket's start; a time without a zone is UTC (as ClickHouse may hand it back)."""
    epoch = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def mark_rows(times: Iterable[datetime]) -> list[list[object]]:
    """(rollup_name, bucket) rows for every bucket these times fall in, each once."""
    moments = set(times)
    rows: list[list[object]] = []
    for rollup in ROLLUPS:
        for bucket in sorted({bucket_start(moment, rollup.seconds) for moment in moments}):
            rows.append([rollup.name, bucket])
    return rows


# Per bucket ever marked or built: its newest mark and its newest build (1970 when none).
# (One grouped scan of both small tables: a join of them cost ten times as much in chDB.)
STATE_SQL = f"""
SELECT rollup_name, toUnixTimestamp(bucket), maxIf(version, built = 0) AS marked, maxIf(version, built = 1) AS done
FROM (SELECT rollup_name, bucket, version, 0 AS built FROM {DIRTY_TABLE}
      UNION ALL SELECT rollup_name, bucket, version, 1 AS built FROM {BUILT_TABLE})
GROUP BY rollup_name, bucket
"""
# Dirty: a mark newer than the last build (or no build).
DIRTY_SQL = STATE_SQL + " HAVING marked > done"


def closed_condition(grace_s: float) -> str:
    """A condition for DIRTY_SQL's HAVING: the bucket ended, plus the grace, before the server's now."""
    names = ", ".join(f"'{rollup.name}'" for rollup in ROLLUPS)
    lengths = ", ".join(str(rollup.seconds) for rollup in ROLLUPS)
    return (f" AND toUnixTimestamp(bucket) + transform(toString(rollup_name), [{names}], [{lengths}], 0)"
            f" + {float(grace_s)} <= toUnixTimestamp(now())")


def rebuild_sql(rollup: Rollup, intervals: list[tuple[int, int]]) -> str:
    """Recompute these buckets (start, end in epoch seconds, grain-aligned) from the raw rows."""
    where = " OR ".join(f"(time >= toDateTime64({start}, 3, 'UTC') AND time < toDateTime64({end}, 3, 'UTC'))"
                        for start, end in intervals)
    dims = ", ".join(rollup.dims)
    return (f"INSERT INTO {rollup.table} (bucket, {dims}, {', '.join(MEASURES)}, built_at) "
            f"SELECT {START_OF[rollup.grain]}(time) AS b, {dims}, count(), countIf(status = 'error'), "
            f"sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), "
            f"{''.join(f'sum({column}), ' for column in TOKEN_DETAILS)}sum(cost), "
            f"{QUANTILES.replace('(', 'State(', 1)}(latency_ms), now64(6) "
            f"FROM {TABLE} FINAL WHERE {where} GROUP BY b, {dims}" + FINAL_SETTINGS)


def intervals_of(buckets: Iterable[int], seconds: int) -> list[tuple[int, int]]:
    """Adjacent buckets (start times, epoch seconds) merged into [start, end) intervals."""
    merged: list[tuple[int, int]] = []
    for start in sorted(set(buckets)):
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], start + seconds)
        else:
            merged.append((start, start + seconds))
    return merged
