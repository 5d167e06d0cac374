"""The grouped usage query (`GET /admin/usage`'s SQL, services/accounting/usage_query.py)
over N synthetic rows in embedded chDB.

    nice -n 10 python -m bench.usage_query [--rows 10000000] [--runs 5] [--raw-runs 5]

Fills a temporary chDB with `--rows` usage rows (20 orgs, 500 keys, 8 models, 4
providers, 60 days, 2 % errors) through the store's own schema, then times each query
shape `--runs` times through `usage_report`: first over the raw rows alone (FINAL, exact
percentiles), then with the rollups built (services/accounting/rollups.py; the build is
timed), checking that both answer the same counts, tokens, cost and errors and printing the
largest relative difference of a percentile. Prints one line per shape and path: median and
slowest, in ms. The directory is removed at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from services.accounting.clickhouse_migrations import TABLE
from services.accounting.clickhouse_store import ClickHouseStore
from services.accounting.rollup_builder import rebuild_due
from services.accounting.rollups import ROLLUPS, mark_everything_sql
from services.accounting.usage_query import usage_report
from shared.usage_report import UsageQuery, UsageReport

FILL = f"""
INSERT INTO {TABLE} (event_id, time, org_id, team_id, user_id, key_id, request_id, model, provider,
                     deployment_model, endpoint, stream, status, usage_source, prompt_tokens,
                     completion_tokens, total_tokens, cost, latency_ms, attempts)
SELECT toString(generateUUIDv4()),
       toDateTime64('2026-10-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(intHash64(number) % (60 * 86400000)),
       concat('org-', toString(number % 20)), concat('team-', toString(number % 60)), concat('user-', toString(number % 2000)),
       concat('key_', toString(number % 500)), '', ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet', 'claude-haiku',
       'gemini-pro', 'gemini-flash', 'llama', 'mistral'][number % 8 + 1],
       ['openai', 'anthropic', 'gemini', 'bedrock'][number % 4 + 1],
       '', 'chat', number % 3 = 0, if(number % 50 = 0, 'error', 'ok'), 'upstream', number % 900, number % 300,
       number % 900 + number % 300, toDecimal128((number % 1000) / 1000000, 12), (intHash32(number) % 20000) / 10, 1
FROM numbers({{start:UInt64}}, {{count:UInt64}})
"""

SHAPES: dict[str, UsageQuery] = {
    "all rows, by model and day": UsageQuery(group_by=["model", "day"]),
    "all rows, by provider and hour": UsageQuery(group_by=["provider", "hour"]),
    "one org, by key, 7 days": UsageQuery(group_by=["key"], org_id="org-3", since="2026-11-01", until="2026-11-08"),
    "one org, by user": UsageQuery(group_by=["user"], org_id="org-7"),
    "all rows, totals only": UsageQuery(group_by=[]),
}


async def run(rows: int, runs: int, raw_runs: int, workdir: Path) -> None:
    store = await ClickHouseStore.open(f"chdb://{workdir / 'chdb'}")
    try:
        started = time.monotonic()
        chunk = 1_000_000
        for start in range(0, rows, chunk):
            await store.query(FILL, {"start": start, "count": min(chunk, rows - start)})
        await store.query(f"OPTIMIZE TABLE {TABLE} FINAL", {})
        print(f"filled {rows:,} rows in {time.monotonic() - started:.1f} s (merged)")
        exact = {name: await timed(store, name, query, raw_runs, "raw rows") for name, query in SHAPES.items()}
        started = time.monotonic()
        for rollup in ROLLUPS:  # the rows came in around the store: every bucket is dirty
            await store.query(mark_everything_sql(rollup), {})
        buckets = await rebuild_due(store, close_grace_s=0)
        sizes = await store.query("SELECT table, sum(rows) FROM system.parts WHERE active AND table LIKE "
                                  "'usage_rollup_%' GROUP BY table ORDER BY table", {})
        print(f"rollups built in {time.monotonic() - started:.1f} s ({buckets} buckets; "
              + ", ".join(f"{table} {rows:,} rows" for table, rows in sizes) + ")")
        for name, query in SHAPES.items():
            compare(name, exact[name], await timed(store, name, query, runs, "rollups"))
    finally:
        await store.close()


async def timed(store: ClickHouseStore, name: str, query: UsageQuery, runs: int, path: str) -> UsageReport:
    times = []
    for _ in range(runs):
        begun = time.perf_counter()
        report = await usage_report(store, query)
        times.append((time.perf_counter() - begun) * 1000)
        assert report.error is None, report.error
    print(f"{name} [{path}]: median {statistics.median(times):.0f} ms, slowest {max(times):.0f} ms "
          f"({len(report.rows)} groups, {report.totals.requests if report.totals else 0:,} requests)")
    return report


def compare(name: str, exact: UsageReport, rolled: UsageReport) -> None:
    """Sums must be equal; percentiles: the largest relative difference."""
    worst = 0.0
    assert len(exact.rows) == len(rolled.rows), name
    for want, got in zip([*exact.rows, exact.totals], [*rolled.rows, rolled.totals], strict=True):
        assert want is not None and got is not None
        sums = ("group", "requests", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
                "cache_write_tokens", "reasoning_tokens", "cost", "errors", "error_rate")
        assert want.model_dump(include=set(sums)) == got.model_dump(include=set(sums)), (name, want, got)
        for field in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
            exact_value, approx = getattr(want, field), getattr(got, field)
            worst = max(worst, abs(approx - exact_value) / exact_value if exact_value else 0.0)
    print(f"{name}: sums equal on both paths; percentiles within {worst:.2%} of exact")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--raw-runs", type=int, default=None, help="runs over the raw rows alone (default: --runs)")
    args = parser.parse_args()
    raw_runs = args.runs if args.raw_runs is None else args.raw_runs
    if not (1 <= args.rows <= 100_000_000 and 1 <= args.runs <= 100 and 1 <= raw_runs <= 100):
        parser.error("out of range")
    workdir = Path(tempfile.mkdtemp(prefix="jetgate-usage-query-"))
    try:
        asyncio.run(run(args.rows, args.runs, raw_runs, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
