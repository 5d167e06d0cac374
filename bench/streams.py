"""Event-stream throughput: usage events into ClickHouse and Postgres through the accounting
service, and `jetgate audit replay` to JSONL.

    nice -n 10 python -m bench.streams [--rate 5000] [--seconds 20] [--replay-events 200000]

Starts an embedded nats-server and Postgres (migrated) in a temporary directory, and the
accounting service as its own process (`python -m services.accounting`, chDB in that
directory), as `jetgate up` runs them.

1. ingest: publishes `--rate` usage events a second for `--seconds` (open loop, pipelined
   publishes with their PubAcks counted as they come: bench/publisher.py), samples the consumer's pending events and
   `jetgate_consumer_lag_seconds` from accounting's `/metrics`, waits until every event is
   written, then stops accounting and reads each event's lag from ClickHouse itself
   (`inserted_at - time`: from the event's creation to its row).
2. replay: publishes `--replay-events` audit events, then replays them to a JSONL file
   with the replay code `jetgate audit replay --to jsonl` runs, and reports events/s.

Everything started is stopped by PID at the end, also on errors; the directory is removed.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sqlalchemy import func, select

from bench import footprint, procs
from bench.publisher import publish_at, publish_bodies, usage_bodies, usage_body
from jetgate.embedded.nats import EmbeddedNats
from jetgate.embedded.ports import free_port
from jetgate.embedded.postgres import EmbeddedPostgres
from jetgate.replay.run import ReplayJob, replay
from jetgate.replay.source import KINDS, Selection
from services.accounting.clickhouse_store import ClickHouseStore
from shared.bus import connect, ensure_streams, event_data, event_headers, event_subject
from shared.db.engine import make_engine
from shared.db.migrate import upgrade
from shared.db.tables import spend_ledger
from shared.events import RequestData, RequestEvent
from shared.settings import Settings
from shared.subjects import USAGE_CONSUMER, USAGE_STREAM

REPO = Path(__file__).resolve().parent.parent
WINDOW = 2000  # publishes in flight at most


def audit_event(i: int) -> RequestEvent:
    return RequestEvent(type="request.completed", source="ingress", org_id=f"org-{i % 10}", key_id=f"key_{i % 100}",
                        request_id=f"r{i}", data=RequestData(path="/v1/chat/completions", model="gpt-4o-mini",
                                                             status_code=200, latency_ms=4.2))


async def publish_fast(js: JetStreamContext, count: int, make) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, count, WINDOW):
        events = [make(i) for i in range(start, min(count, start + WINDOW))]
        await asyncio.gather(*(js.publish(event_subject(e), event_data(e), headers=event_headers(e)) for e in events))


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time so far of each named process tree (the machine is shared: CPU per event is the
    figure that does not depend on what else runs)."""
    return {name: sum(part.cpu_s for part in footprint.sample(pid).values()) for name, pid in pids.items()}


def cpu_line(before: dict[str, float], after: dict[str, float], events: int) -> str:
    return ", ".join(f"{name} {(after[name] - before[name]) * 1e6 / events:.0f} µs" for name in after)


def scrape_lag_seconds(port: int) -> float | None:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith(f'jetgate_consumer_lag_seconds{{consumer="{USAGE_CONSUMER}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return None


async def ingest(settings: Settings, workdir: Path, rate: int, seconds: float, servers: dict[str, int]) -> None:
    metrics_port = free_port()
    env = {**os.environ, **settings.to_env(), "JETGATE_ACCOUNTING__METRICS_PORT": str(metrics_port),
           "JETGATE_LOG_LEVEL": "WARNING"}
    accounting = procs.start("accounting", ["nice", "-n", "10", sys.executable, "-m", "services.accounting"],
                             workdir / "accounting.log", env=env, cwd=REPO, port=metrics_port, ready_timeout_s=120,
                             http=False)
    nc = await connect(settings.require("nats_url"), "bench")
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + 120
        while True:  # accounting creates its durable consumer once its stores are open
            try:
                await js.consumer_info(USAGE_STREAM.name, USAGE_CONSUMER)
                break
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        await publish_bodies(nc, usage_bodies(200))  # warm up: consumer bound, tables touched
        await asyncio.sleep(2)
        samples: list[tuple[int, float | None]] = []
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                info = await js.consumer_info(USAGE_STREAM.name, USAGE_CONSUMER)
                samples.append((int(info.num_pending or 0) + int(info.num_ack_pending or 0),
                                await asyncio.to_thread(scrape_lag_seconds, metrics_port)))
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample())
        pids = {"accounting": accounting.pid, **servers}
        cpu_before, own_before = cpu_seconds(pids), time.process_time()
        started = time.monotonic()
        last = await publish_at(nc, rate, seconds, lambda i: usage_body(1000 + i))
        published_s = time.monotonic() - started
        publisher_cpu = time.process_time() - own_before
        while True:
            info = await js.consumer_info(USAGE_STREAM.name, USAGE_CONSUMER)
            if info.ack_floor and (info.ack_floor.stream_seq or 0) >= last:
                break
            await asyncio.sleep(0.05)
        drained_s = time.monotonic() - started
        cpu_after = cpu_seconds(pids)
        stop.set()
        await sampler
    finally:
        await nc.close()
        procs.stop(accounting)
        print("accounting log (last lines):\n" + procs.log_tail(workdir / "accounting.log", 8))
    total = int(rate * seconds)
    store = await ClickHouseStore.open(settings.require("clickhouse_url"))
    try:
        [(rows, p50, p99, worst)] = await store.query(
            "SELECT count(), quantileExact(0.5)(lag), quantileExact(0.99)(lag), max(lag) FROM "
            "(SELECT toFloat64(inserted_at) - toFloat64(time) AS lag FROM usage_events FINAL WHERE request_id != '')", {})
    finally:
        await store.close()
    engine = make_engine(settings.require("database_url"))
    try:
        async with engine.connect() as conn:
            ledger_rows = (await conn.execute(select(func.count()).select_from(spend_ledger))).scalar_one()
    finally:
        await engine.dispose()
    lags = [s[1] for s in samples if s[1] is not None]
    busy = cpu_after["accounting"] - cpu_before["accounting"]
    print(f"ingest: load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min, 2 cores)")
    print(f"ingest: {total:,} events published at {total / published_s:,.0f}/s over {published_s:.1f} s; "
          f"all written {drained_s - published_s:.2f} s after the last publish "
          f"({total / drained_s:,.0f} events/s end to end)")
    print(f"ingest: rows in ClickHouse {rows - 200:,}, in the Postgres spend ledger {ledger_rows - 200:,} "
          f"(+200 warm-up each); per-event lag creation→row: "
          f"p50 {p50:.3f} s, p99 {p99:.3f} s, max {worst:.3f} s")
    print(f"ingest: sampled pending (undelivered + unacked) max {max(s[0] for s in samples):,}; "
          f"jetgate_consumer_lag_seconds max {max(lags) if lags else float('nan'):.3f} s, "
          f"median {statistics.median(lags) if lags else float('nan'):.3f} s")
    print(f"ingest: CPU per event: {cpu_line(cpu_before, cpu_after, total)}, publisher (this process, "
          f"while publishing) {publisher_cpu * 1e6 / total:.0f} µs; accounting busy {busy:.1f} CPU-s "
          f"of {drained_s:.1f} s wall: {total / busy:,.0f} events per accounting CPU-second")


async def replay_rate(settings: Settings, workdir: Path, count: int, servers: dict[str, int]) -> None:
    nc = await connect(settings.require("nats_url"), "bench")
    try:
        js = nc.jetstream()
        since = datetime.now(UTC)
        started = time.monotonic()
        await publish_fast(js, count, audit_event)
        print(f"replay: published {count:,} audit events in {time.monotonic() - started:.1f} s")
        kind = KINDS["audit"]
        job = ReplayJob(Selection(kind, kind.subject(None), since=since), "jsonl", out=workdir / "audit.jsonl",
                        progress=False)
        cpu_before, own_before = cpu_seconds(servers), time.process_time()
        result = await replay(job, settings, js)
        cpu_after, own = cpu_seconds(servers), time.process_time() - own_before
    finally:
        await nc.close()
    print(f"replay: {result.read:,} audit events to JSONL in {result.seconds:.2f} s: "
          f"{result.read / result.seconds:,.0f} events/s ({(workdir / 'audit.jsonl').stat().st_size / 1e6:.0f} MB)")
    print(f"replay: CPU per event: replay {own * 1e6 / result.read:.0f} µs, {cpu_line(cpu_before, cpu_after, result.read)}; "
          f"{result.read / own:,.0f} events per replay CPU-second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--replay-events", type=int, default=200_000)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    if not (1 <= args.rate <= 100_000 and 1 <= args.seconds <= 600 and 0 <= args.replay_events <= 10_000_000):
        parser.error("out of range")
    workdir = Path(tempfile.mkdtemp(prefix="jetgate-streams-"))
    nats = EmbeddedNats(workdir / "nats")
    postgres = EmbeddedPostgres(workdir / "pg")
    try:
        nats.start()
        postgres.start()
        upgrade(postgres.url)
        settings = Settings(nats_url=nats.url, database_url=postgres.url, clickhouse_url=f"chdb://{workdir / 'chdb'}")

        async def topology() -> None:
            nc = await connect(nats.url, "bench")
            await ensure_streams(nc.jetstream())
            await nc.close()

        asyncio.run(topology())
        assert nats.process is not None and postgres.process is not None
        servers = {"nats-server": nats.process.pid, "postgres": postgres.process.pid}
        if not args.skip_ingest:
            asyncio.run(ingest(settings, workdir, args.rate, args.seconds, servers))
        if args.replay_events:
            asyncio.run(replay_rate(settings, workdir, args.replay_events, {"nats-server": nats.process.pid}))
    finally:
        postgres.stop()
        nats.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
