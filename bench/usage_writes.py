"""CPU per event of accounting's usage writes: `write_usage` (ClickHouse through chDB and
the Postgres spend ledger, then the corrections check), in batches, no bus.

    nice -n 10 python -m bench.usage_writes [--events 50000] [--batch 500]

Starts an embedded Postgres (migrated) and chDB in a temporary directory, parses
`--events` usage events as accounting does, then writes them batch after batch and
reports events/s and CPU µs per event of this process (chDB runs in it) and of Postgres.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from bench import footprint
from bench.publisher import usage_bodies
from jetgate.embedded.postgres import EmbeddedPostgres
from services.accounting.clickhouse_store import ClickHouseStore
from services.accounting.handlers import write_usage
from services.accounting.intake import parse_usage
from shared.db.engine import make_engine
from shared.db.migrate import upgrade
from shared.db.tables import api_keys


async def run(database_url: str, clickhouse_url: str, pg_pid: int, events: int, batch: int) -> None:
    engine = make_engine(database_url)
    store = await ClickHouseStore.open(clickhouse_url)
    try:
        async with engine.begin() as conn:  # the keys the events name, so their spend is added
            await conn.execute(insert(api_keys), [{"id": f"key_{i}", "key_hash": f"{i:064d}", "prefix": "jg-bench",
                                                   "name": "bench", "org_id": f"org-{i % 10}"} for i in range(100)])
        parsed = [parse_usage(data) for _, data, _ in usage_bodies(events)]
        await write_usage(store, engine, parsed[:batch])  # warm up: statements prepared, tables touched
        cpu_before, pg_before = time.process_time(), footprint.cpu_seconds(pg_pid)
        started = time.monotonic()
        for start in range(batch, events, batch):
            await write_usage(store, engine, parsed[start:start + batch])
        wall = time.monotonic() - started
        written = events - batch
        own, pg = time.process_time() - cpu_before, footprint.cpu_seconds(pg_pid) - pg_before
        print(f"write_usage, batches of {batch}: {written / wall:,.0f} events/s; CPU per event: accounting "
              f"(incl. chDB) {own * 1e6 / written:.1f} µs, postgres {pg * 1e6 / written:.1f} µs")
    finally:
        await store.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="jetgate-usage-writes-"))
    postgres = EmbeddedPostgres(workdir / "pg")
    try:
        postgres.start()
        upgrade(postgres.url)
        assert postgres.process is not None
        from shared.service import install_event_loop  # the services' own loop (uvloop)

        install_event_loop()
        asyncio.run(run(postgres.url, f"chdb://{workdir / 'chdb'}", postgres.process.pid, args.events, args.batch))
    finally:
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
