"""Nothing lost, nothing doubled: a database outage, and kill -9 of the real process."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from jetgate.embedded.ports import free_port
from shared.settings import Settings
from shared.subjects import USAGE_CONSUMER, USAGE_STREAM

ROOT = Path(__file__).resolve().parents[3]


async def test_database_outage_naks_then_writes_everything_once(harness, service, settings) -> None:
    key_id = await harness.add_key()
    events = [harness.usage(key_id, "0.125") for _ in range(20)]
    down = settings.model_copy(update={"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/jetgate"})
    async with service(down):
        for event in events:
            last = await harness.publish_usage(event)

        async def redelivered() -> bool:
            info = await harness.js.consumer_info(USAGE_STREAM.name, USAGE_CONSUMER)
            return (info.num_redelivered or 0) > 0

        await harness.eventually(redelivered, 30, "a failed batch to be redelivered")
        assert await harness.ledger() == (0, Decimal(0))
    # Postgres is back; chDB already holds some of these rows from the failed attempts.
    async with service():
        await harness.consumed(USAGE_STREAM.name, USAGE_CONSUMER, last, timeout=60)
        report = await harness.query(org_id=harness.org_id, group_by=[])
    assert [(row.requests, row.cost) for row in report.rows] == [(20, "2.5")]
    assert await harness.ledger() == (20, Decimal("2.5"))
    assert await harness.spend(key_id) == Decimal("2.5")


def _start(settings: Settings, log: Path, batch_size: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "JETGATE_NATS_URL": str(settings.nats_url),
           "JETGATE_DATABASE_URL": str(settings.database_url),
           "JETGATE_CLICKHOUSE_URL": str(settings.clickhouse_url),
           "JETGATE_ACCOUNTING__BATCH_SIZE": str(batch_size), "JETGATE_ACCOUNTING__BATCH_WAIT_S": "0.05",
           "JETGATE_ACCOUNTING__METRICS_PORT": "0", "JETGATE_ACCOUNTING__ACK_WAIT_S": "3"}
    return subprocess.Popen([sys.executable, "-m", "services.accounting"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def test_kill_9_mid_stream_then_restart_counts_each_event_once(harness, settings, tmp_path) -> None:
    """Messages the killed process held unacked come back after ack_wait (30 s): this test is slow."""
    key_id = await harness.add_key()
    count = 3000  # in batches of 10: the kill lands while most are still to be written
    for _ in range(count):
        last = await harness.publish_usage(harness.usage(key_id, "0.001"))
    log = tmp_path / "accounting.log"
    proc = _start(settings, log, batch_size=10)
    try:
        async def started() -> bool:
            assert proc.poll() is None, log.read_text()
            return (await harness.ledger())[0] > 0

        await harness.eventually(started, 60, "the first batch")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        written, _ = await harness.ledger()
        assert written < count, "the process finished before it was killed: publish more"

        proc = _start(settings, log, batch_size=500)  # the same chDB directory, reopened after kill -9
        await harness.consumed(USAGE_STREAM.name, USAGE_CONSUMER, last, timeout=90)
        report = await harness.query(org_id=harness.org_id, group_by=["key_id"])
        assert [(row.group, row.requests, row.cost) for row in report.rows] == [({"key_id": key_id}, count, "3")]
        assert await harness.ledger() == (count, Decimal(3))
        assert await harness.spend(key_id) == Decimal(3)

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
