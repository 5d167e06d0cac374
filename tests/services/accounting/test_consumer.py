"""The generic batch loop on a real JetStream stream of its own, with a store written in
the test: which failures are retried, which are dead-lettered, and that nothing is lost."""
from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.exc import DataError

from services.accounting.consumer import DLQ_REASON, BatchConsumer, ConsumerSpec
from shared.subjects import DLQ_STREAM, StreamSpec, dlq_subject


async def test_refused_event_is_dead_lettered_failed_write_is_retried(nc, harness) -> None:
    js = nc.jetstream()
    tag = uuid.uuid4().hex[:10]
    stream = StreamSpec(f"ACCOUNTING_TEST_{tag}", (f"accounting-test.{tag}.>",), max_age_s=600)
    await js.add_stream(name=stream.name, subjects=list(stream.subjects))
    spec = ConsumerSpec(f"accounting-test-{tag}", stream, batch_size=20, batch_wait_s=0.1, idle_poll_s=0.2)
    written: list[str] = []
    outage = {"flaky"}

    def parse(raw: bytes) -> str:
        text = raw.decode()
        if text == "garbage":
            raise ValueError("not an event")
        return text

    async def write(items: list[str]) -> None:
        if "poison" in items:
            raise DataError("INSERT ...", {}, Exception("value too long for type character varying(40)"))
        if "flaky" in items and outage:
            outage.clear()
            raise ConnectionRefusedError("database is down")
        written.extend(items)

    consumer = BatchConsumer(js, spec, parse, write)
    await consumer.subscribe()
    bodies = ["a", "b", "poison", "c", "garbage", "flaky", "d"]
    for body in bodies:
        last = (await js.publish(f"accounting-test.{tag}.x", body.encode())).seq
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await harness.consumed(stream.name, spec.name, last)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await consumer.close()
        await js.delete_stream(stream.name)

    assert sorted(written) == ["a", "b", "c", "d", "flaky"]  # flaky once, after its redelivery
    dlq = await js.pull_subscribe(dlq_subject(spec.name), stream=DLQ_STREAM.name)
    msgs = await dlq.fetch(10, timeout=2)
    reasons = {msg.data.decode(): msg.headers[DLQ_REASON] for msg in msgs}
    await dlq.unsubscribe()
    assert set(reasons) == {"poison", "garbage"}
    assert reasons["poison"].startswith("rejected by the store: DataError")
    assert reasons["garbage"] == "invalid event: not an event"
