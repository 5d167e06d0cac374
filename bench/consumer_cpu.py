"""CPU per event of the accounting consumer's bus loop, on a stored backlog, three ways:

    nice -n 10 python -m bench.consumer_cpu [--events 50000] [--batch 500] [--runs 2]

Starts an embedded nats-server, publishes `--events` usage events into the usage stream,
then reads all of them with a fresh durable consumer per way, each parsing every event as
accounting does (`parse_usage`) and acking it, with no store behind it:

- pull loop: accounting's own `BatchConsumer` (pull requests on a core subscription,
  services/accounting/pull.py), its write a no-op;
- nats-py fetch: `pull_subscribe` + `fetch(batch)`, as `BatchConsumer` read before;
- FastStream: a JetStream pull batch subscriber, `PullSub(batch_size, batch=True)`,
  FastStream acking each message of a batch after the handler returns.

Reported per way: events/s and CPU µs per event of this process and of nats-server (read
from /proc; the machine is shared, so CPU per event is the figure to compare).
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from bench import footprint
from bench.publisher import publish_bodies, usage_bodies
from jetgate.embedded.nats import EmbeddedNats
from services.accounting.consumer import BatchConsumer, ConsumerSpec
from services.accounting.intake import parse_usage
from shared.bus import connect, ensure_streams
from shared.subjects import USAGE_STREAM

Way = Callable[[str, JetStreamContext, str, int, int], Awaitable[None]]


async def settled(js: JetStreamContext, durable: str, last: int) -> None:
    while True:
        info = await js.consumer_info(USAGE_STREAM.name, durable)
        if info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= last:
            return
        await asyncio.sleep(0.05)


async def pull_loop(url: str, js: JetStreamContext, durable: str, last: int, batch: int) -> None:
    async def write(events: list[Any]) -> None:
        return None

    spec = ConsumerSpec(durable, USAGE_STREAM, batch_size=batch, batch_wait_s=0.05, idle_poll_s=1.0)
    consumer = BatchConsumer(js, spec, parse_usage, write)
    await consumer.subscribe()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await settled(js, durable, last)
    stop.set()
    await task
    await consumer.close()


async def nats_py_fetch(url: str, js: JetStreamContext, durable: str, last: int, batch: int) -> None:
    config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000)
    sub = await js.pull_subscribe(USAGE_STREAM.subjects[0], durable=durable, stream=USAGE_STREAM.name, config=config)
    done = asyncio.create_task(settled(js, durable, last))
    while not done.done():
        try:
            msgs = await sub.fetch(batch, timeout=0.05)
        except TimeoutError:
            continue
        for msg in msgs:
            parse_usage(msg.data)
        for msg in msgs:
            await msg.ack()
    await sub.unsubscribe()


async def faststream_pull(url: str, js: JetStreamContext, durable: str, last: int, batch: int) -> None:
    from faststream.nats import JStream, NatsBroker, PullSub  # only this way needs it

    broker = NatsBroker(url, logger=None)

    @broker.subscriber(USAGE_STREAM.subjects[0], stream=JStream(USAGE_STREAM.name, declare=False), durable=durable,
                       pull_sub=PullSub(batch_size=batch, timeout=0.05, batch=True))
    async def on_batch(bodies: list[bytes]) -> None:
        for body in bodies:
            parse_usage(body)

    await broker.start()
    try:
        await settled(js, durable, last)
    finally:
        await broker.stop()


WAYS: dict[str, Way] = {"pull loop": pull_loop, "nats-py fetch": nats_py_fetch, "FastStream PullSub": faststream_pull}


async def run(url: str, nats_pid: int, events: int, batch: int, runs: int) -> None:
    nc = await connect(url, "bench")
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        started = time.monotonic()
        last = await publish_bodies(nc, usage_bodies(events))
        print(f"published {events:,} usage events in {time.monotonic() - started:.1f} s (last seq {last})")
        for attempt in range(runs):
            for name, way in WAYS.items():
                durable = f"bench-{name.split()[0].lower()}-{attempt}"
                cpu_before, nats_before = time.process_time(), footprint.cpu_seconds(nats_pid)
                started = time.monotonic()
                await way(url, js, durable, last, batch)
                wall = time.monotonic() - started
                own, server = time.process_time() - cpu_before, footprint.cpu_seconds(nats_pid) - nats_before
                await js.delete_consumer(USAGE_STREAM.name, durable)
                print(f"{name:>18}: {last / wall:8,.0f} events/s; CPU per event: consumer {own * 1e6 / last:5.1f} µs, "
                      f"nats-server {server * 1e6 / last:5.1f} µs")
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="jetgate-consumer-cpu-"))
    nats = EmbeddedNats(workdir / "nats")
    try:
        nats.start()
        assert nats.process is not None
        from shared.service import install_event_loop  # the services' own loop (uvloop)

        install_event_loop()
        asyncio.run(run(nats.url, nats.process.pid, args.events, args.batch, args.runs))
    finally:
        nats.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
