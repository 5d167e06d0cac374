"""10,000 usage events published in one burst: each is in ClickHouse and the spend
ledger exactly once, the totals exact."""
from __future__ import annotations

import asyncio
from decimal import Decimal

from prometheus_client import REGISTRY

from services.accounting.clickhouse_store import ClickHouseStore
from shared.settings import AccountingSettings
from shared.subjects import USAGE_CONSUMER, USAGE_STREAM

BURST = 10_000


async def test_a_burst_of_10000_usage_events_lands_once_each(harness, service, settings) -> None:
    key = await harness.add_key()
    events = [harness.usage(key, "0.000001", model=f"m{i % 4}", tokens=(i % 50, 1)) for i in range(BURST)]
    burst = settings.model_copy(update={"accounting": AccountingSettings(
        batch_size=500, batch_wait_s=0.05, metrics_port=0, idle_poll_s=0.3, max_nak_delay_s=1, failure_pause_s=0.2)})
    async with service(burst):
        seqs: list[int] = []
        for start in range(0, BURST, 1000):  # 1,000 publishes in flight at a time
            seqs += await asyncio.gather(*(harness.publish_usage(e) for e in events[start:start + 1000]))
        await harness.consumed(USAGE_STREAM.name, USAGE_CONSUMER, max(seqs), timeout=120)
        report = await harness.query(org_id=harness.org_id, group_by=[])
        lag_s = REGISTRY.get_sample_value("jetgate_consumer_lag_seconds", {"consumer": USAGE_CONSUMER})
    assert lag_s is not None and lag_s >= 0  # exported on /metrics, in seconds
    assert report.totals is not None and report.totals.requests == BURST
    assert report.totals.prompt_tokens == sum(i % 50 for i in range(BURST))
    assert Decimal(report.totals.cost) == Decimal("0.000001") * BURST
    assert await harness.ledger() == (BURST, Decimal("0.000001") * BURST)
    assert await harness.spend(key) == Decimal("0.000001") * BURST

    store = await ClickHouseStore.open(settings.require("clickhouse_url"))  # the service is stopped: ours now
    try:
        [(final, distinct)] = await store.query(
            "SELECT count(), uniqExact(event_id) FROM usage_events FINAL WHERE org_id = {org:String}",
            {"org": harness.org_id})
    finally:
        await store.close()
    assert final == distinct == BURST
