"""The ClickHouse schema, as numbered migrations recorded in `schema_migrations`.

`apply_migrations` runs at every start (accounting, a replay into ClickHouse): it creates
`schema_migrations` if missing, then applies, in order, each migration not recorded
there, and records it. Every statement is idempotent (`IF NOT EXISTS`), so two processes
starting at once against one ClickHouse server at worst both apply and record one, and a
database that predates this table (it has `usage_events`) is adopted by migration 1
doing nothing.

Rollups (migration 3, services/accounting/rollups.py): tables recomputed per closed time
bucket from the deduplicated raw rows, never by materialised views (a view fires on every
insert, so a redelivered event would count twice). Migration 3 marks every bucket already
holding rows dirty, so the builder rolls up an existing database once after upgrading;
migration 5, adding the cached, cache-write and reasoning token sums to the rollups, does the
same, so no rollup row keeps the 0 the new columns start with (until rebuilt, a dirty bucket
is read from the raw rows).
"""
from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from services.accounting.clickhouse_tables import TABLE
from services.accounting.rollups import ROLLUPS, STATE_DDL, add_details_sql, mark_everything_sql, table_ddl

__all__ = ["MIGRATIONS", "TABLE", "Migration", "apply_migrations"]
MIGRATIONS_TABLE = "schema_migrations"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "usage_events", (f"""
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
""",)),
    # filled once events carry the user (tenancy); '' until then, like team_id without a team
    Migration(2, "usage_events.user_id",
              (f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS user_id String DEFAULT '' AFTER team_id",)),
    # marking again is harmless (one more rebuild), so the inserts are idempotent in effect
    Migration(3, "usage rollups", (*STATE_DDL, *(table_ddl(rollup) for rollup in ROLLUPS),
                                   *(mark_everything_sql(rollup) for rollup in ROLLUPS))),
    # parts of the token counts the upstream reports (events of schema 1 without them: 0)
    Migration(4, "usage_events.cached_reasoning_tokens", tuple(
        f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {column} UInt32 DEFAULT 0 AFTER {after}"
        for column, after in (("cached_tokens", "total_tokens"), ("cache_write_tokens", "cached_tokens"),
                              ("reasoning_tokens", "cache_write_tokens")))),
    # their sums in the rollups; every bucket dirty, so the builder refills the zeros of old rows
    Migration(5, "usage rollups.cached_reasoning_tokens", (*(sql for rollup in ROLLUPS for sql in add_details_sql(rollup)),
                                                           *(mark_everything_sql(rollup) for rollup in ROLLUPS))),
)

SCHEMA_MIGRATIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    version UInt32,
    name String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""


def applied_versions(client: Client) -> set[int]:
    return {int(row[0]) for row in client.query(f"SELECT DISTINCT version FROM {MIGRATIONS_TABLE}").result_rows}


def apply_migrations(client: Client, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply what is missing, in order; returns the versions applied now."""
    client.command(SCHEMA_MIGRATIONS_DDL)
    done = applied_versions(client)
    applied = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        for statement in migration.statements:
            client.command(statement)
        client.insert(MIGRATIONS_TABLE, [[migration.version, migration.name]], column_names=("version", "name"))
        applied.append(migration.version)
    return applied
