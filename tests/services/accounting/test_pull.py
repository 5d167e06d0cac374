"""The pull loop (services/accounting/pull.py) on a real nats-server, each test on a stream
of its own: a stop mid-batch settles everything it was sent, a deleted durable is created
again, and two replicas on one durable write each event once."""
from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from nats.js import JetStreamContext

from services.accounting.consumer import BatchConsumer, ConsumerSpec
from shared.subjects import StreamSpec


@pytest.fixture
async def stream(nc) -> AsyncIterator[StreamSpec]:
    js: JetStreamContext = nc.jetstream()
    tag = uuid.uuid4().hex[:10]
    spec = StreamSpec(f"PULL_TEST_{tag}", (f"pull-test.{tag}.>",), max_age_s=600)
    await js.add_stream(name=spec.name, subjects=list(spec.subjects))
    yield spec
    await js.delete_stream(spec.name)


def consumer_spec(stream: StreamSpec, **overrides: float) -> ConsumerSpec:
    fields = {"batch_size": 50, "batch_wait_s": 0.05, "idle_poll_s": 0.2, "ack_wait_s": 30.0, "fill_timeout_s": 0.02}
    return ConsumerSpec(f"pull-{stream.name.lower()}", stream, **{**fields, **overrides})  # type: ignore[arg-type]


async def publish(js: JetStreamContext, stream: StreamSpec, bodies: list[str]) -> int:
    subject = stream.subjects[0].replace(">", "x")
    acks = await asyncio.gather(*(js.publish(subject, body.encode()) for body in bodies))
    return max(ack.seq for ack in acks)


class Recorder:
    def __init__(self, pause_s: float = 0.0) -> None:
        self.written: list[str] = []
        self.batches = 0
        self.pause_s = pause_s
        self.first = asyncio.Event()

    async def write(self, items: list[str]) -> None:
        await asyncio.sleep(self.pause_s)
        self.written += items
        self.batches += 1
        self.first.set()


async def test_stop_mid_batch_settles_all_it_was_sent_the_rest_comes_to_the_next(nc, harness, stream) -> None:
    js = nc.jetstream()
    bodies = [f"e{i}" for i in range(600)]
    last = await publish(js, stream, bodies)
    spec = consumer_spec(stream)
    first = Recorder(pause_s=0.05)  # slow: the stop lands while batches are delivered and not yet written
    consumer = BatchConsumer(js, spec, bytes.decode, first.write)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.wait_for(first.first.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 10)
    await consumer.close()

    assert 0 < len(first.written) < len(bodies), "stopped before the end: publish more or write slower"

    async def settled() -> bool:  # the server applies acks a moment after it has them
        info = await js.consumer_info(stream.name, spec.name)
        return info.num_ack_pending == 0 and info.ack_floor.stream_seq == info.delivered.stream_seq

    # Nothing delivered is left unsettled: an unacked message would stay pending for ack_wait (30 s).
    await harness.eventually(settled, 5, "every delivered message to be acked")
    info = await js.consumer_info(stream.name, spec.name)
    assert info.delivered.stream_seq == len(first.written)

    second = Recorder()
    consumer = BatchConsumer(js, spec, bytes.decode, second.write)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await harness.consumed(stream.name, spec.name, last, timeout=20)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await consumer.close()
    assert sorted(first.written + second.written) == sorted(bodies)  # each exactly once


async def test_a_deleted_durable_is_created_again_after_its_ack_floor(nc, harness, stream) -> None:
    js = nc.jetstream()
    spec = consumer_spec(stream)
    recorder = Recorder()
    consumer = BatchConsumer(js, spec, bytes.decode, recorder.write)
    await consumer.subscribe()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        before = [f"before{i}" for i in range(120)]
        await harness.consumed(stream.name, spec.name, await publish(js, stream, before), timeout=20)
        await consumer.sample_lag()  # reads the ack floor, as the lag sampler does every lag_interval_s
        await js.delete_consumer(stream.name, spec.name)
        after = [f"after{i}" for i in range(80)]
        last = await publish(js, stream, after)

        async def recreated() -> bool:
            try:
                await js.consumer_info(stream.name, spec.name)
            except Exception:
                return False
            return True

        await harness.eventually(recreated, 20, "the durable to be created again")
        await harness.consumed(stream.name, spec.name, last, timeout=20)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await consumer.close()
    assert Counter(recorder.written) == Counter(before + after)  # from after its floor: nothing twice


async def test_two_replicas_share_the_durable_and_write_each_event_once(nc, harness, stream, nats_url) -> None:
    import nats

    other = await nats.connect(nats_url)
    try:
        spec = consumer_spec(stream, batch_size=100)
        bodies = [f"e{i}" for i in range(3000)]
        recorders = [Recorder(pause_s=0.01), Recorder(pause_s=0.01)]
        consumers = [BatchConsumer(client.jetstream(), spec, bytes.decode, recorder.write)
                     for client, recorder in zip((nc, other), recorders, strict=True)]
        for consumer in consumers:
            await consumer.subscribe()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(consumer.run(stop)) for consumer in consumers]
        try:
            last = await publish(nc.jetstream(), stream, bodies)
            await harness.consumed(stream.name, spec.name, last, timeout=30)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)
            for consumer in consumers:
                await consumer.close()
    finally:
        await other.close()
    written = recorders[0].written + recorders[1].written
    assert sorted(written) == sorted(bodies)  # each once, across both
    assert all(recorder.written for recorder in recorders)  # both took a share


async def test_a_restart_applies_a_changed_ack_wait_to_the_durable_it_finds(nc, stream) -> None:
    js = nc.jetstream()
    first = BatchConsumer(js, consumer_spec(stream, ack_wait_s=30.0), bytes.decode, Recorder().write)
    await first.subscribe()
    await first.close()
    assert (await js.consumer_info(stream.name, consumer_spec(stream).name)).config.ack_wait == 30.0
    spec = consumer_spec(stream, ack_wait_s=3.0, batch_size=10_000)  # the next start, with other settings
    again = BatchConsumer(js, spec, bytes.decode, Recorder().write)
    await again.subscribe()
    await again.close()
    config = (await js.consumer_info(stream.name, spec.name)).config
    assert (config.ack_wait, config.max_ack_pending) == (3.0, 40_000)  # unacked messages come back in 3 s now
