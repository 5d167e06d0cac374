"""The subscribers' event feed under load: does it slow publishing, how fast does it replay,
how soon does a live subscriber see an event.

    python -m bench.event_feed [--events 5000] [--subscribers 8]

Starts an embedded nats-server and one ingress (`jetgate run ingress`, master key only, no
Postgres needed for it) on 127.0.0.1, then measures: JetStream publishes per second with no
subscriber, with one SSE client that never reads, and with `--subscribers` SSE clients
reading the org's feed; the replay rate of one subscriber reading the whole stream (`since`);
and the time from publish to arrival at a live subscriber (p50, p99). The readers run in a
process of their own; on a 2-core machine they still share the cores with nats-server, the
ingress and the publisher, which is what the drop with readers measures. Prints a markdown
table. Everything started is stopped by PID.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from bench import procs
from bench.loop import run_loop
from jetgate.embedded.nats import EmbeddedNats
from jetgate.embedded.ports import free_port
from shared.bus import connect, ensure_streams, publish_event
from shared.events import UsageData, UsageEvent

ORG = "bench"


def _event() -> UsageEvent:
    return UsageEvent(source="router", org_id=ORG, key_id="key_bench",
                      data=UsageData(model="gpt-4o-mini", prompt_tokens=12, completion_tokens=12, total_tokens=24))


async def _publish(url: str, count: int) -> float:
    """Events per second, each publish acknowledged before the next."""
    nc = await connect(url, "bench-publisher")
    try:
        js = nc.jetstream()
        began = time.perf_counter()
        for _ in range(count):
            await publish_event(js, _event())
        return count / (time.perf_counter() - began)
    finally:
        await nc.close()


async def _read(client: httpx.AsyncClient, count: int, params: dict[str, str], seen: list[float] | None = None) -> int:
    got = 0
    async with client.stream("GET", "/events/usage", params=params) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                got += 1
                if seen is not None:
                    sent = orjson.loads(line[5:])["time"]
                    seen.append(time.time() - _epoch(sent))
                if got >= count:
                    return got
    return got


def _epoch(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(rfc3339).timestamp()


def _stalled(port: int, key: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET /events/usage?org_id={ORG} HTTP/1.1\r\nhost: b\r\nauthorization: Bearer {key}\r\n\r\n".encode())
    return sock


async def _readers(base: str, key: str, count: int, subscribers: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=httpx.Timeout(60),
                                 limits=httpx.Limits(max_connections=subscribers + 1)) as client:
        return list(await asyncio.gather(*(_read(client, count, {"org_id": ORG}) for _ in range(subscribers))))


async def _with_readers(nats_url: str, base: str, key: str, events: int, subscribers: int) -> float:
    """Publishes per second while `subscribers` read the feed from a process of their own
    (so the bench's own loop does not compete with its publisher)."""
    readers = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.event_feed", "--read", base, "--events", str(events),
        "--subscribers", str(subscribers), env={**os.environ, "BENCH_FEED_KEY": key}, stdout=asyncio.subprocess.PIPE)
    try:
        await asyncio.sleep(3.0)  # the readers connected, their consumers created
        rate = await _publish(nats_url, events)
        out, _ = await asyncio.wait_for(readers.communicate(), 120)
        assert out.decode().split() == [str(events)] * subscribers, out
        return rate
    finally:
        if readers.returncode is None:
            readers.kill()
            await readers.wait()


async def _measure(nats_url: str, base: str, key: str, port: int, events: int, subscribers: int) -> dict[str, float]:
    results: dict[str, float] = {}
    results["publish/s, no subscriber"] = await _publish(nats_url, events)
    stalled = _stalled(port, key)
    try:
        await asyncio.sleep(1.0)
        results["publish/s, 1 subscriber never reading"] = await _publish(nats_url, events)
    finally:
        stalled.close()
    results[f"publish/s, {subscribers} subscribers reading"] = await _with_readers(nats_url, base, key, events, subscribers)
    async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {key}"},
                                 timeout=httpx.Timeout(30)) as client:
        began = time.perf_counter()
        total = await _read(client, 3 * events, {"org_id": ORG, "since": "2000-01-01T00:00:00Z"})
        results["replay events/s, one subscriber"] = total / (time.perf_counter() - began)
        delays: list[float] = []
        live = asyncio.create_task(_read(client, 200, {"org_id": ORG}, delays))
        await asyncio.sleep(1.0)
        nc = await connect(nats_url, "bench-live")
        try:
            js = nc.jetstream()
            for _ in range(200):
                await publish_event(js, _event())
                await asyncio.sleep(0.01)
        finally:
            await nc.close()
        await asyncio.wait_for(live, 60)
        delays.sort()
        results["publish to live subscriber p50 ms"] = statistics.median(delays) * 1000
        results["publish to live subscriber p99 ms"] = delays[int(len(delays) * 0.99) - 1] * 1000
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--subscribers", type=int, default=8)
    parser.add_argument("--read", help=argparse.SUPPRESS)  # the readers' own process: the ingress URL
    args = parser.parse_args()
    if args.read:
        counts = run_loop(_readers(args.read, os.environ["BENCH_FEED_KEY"], args.events, args.subscribers))
        print(" ".join(str(c) for c in counts))
        return
    root = Path(tempfile.mkdtemp(prefix="jetgate-bench-feed-"))
    nats = EmbeddedNats(root / "nats").start()
    child = None
    try:
        run_loop(_streams(nats.url))
        port, key = free_port(), "jg-bench-" + secrets.token_hex(16)
        env = {**os.environ, "JETGATE_NATS_URL": nats.url, "JETGATE_MASTER_KEY": key,
               "JETGATE_DATABASE_URL": f"postgresql://bench@127.0.0.1:{free_port()}/bench",  # unused: master key only
               "JETGATE_CONFIG": str(Path(__file__).resolve().parents[1] / "jetgate.yaml"),
               "JETGATE_INGRESS__PORT": str(port), "JETGATE_LOG_LEVEL": "WARNING"}
        child = procs.start("ingress", [sys.executable, "-m", "jetgate.cli", "run", "ingress"], root / "ingress.log",
                            env=env, cwd=root, port=port, ready_timeout_s=60, http=False)
        results = run_loop(_measure(nats.url, f"http://127.0.0.1:{port}", key, port, args.events, args.subscribers))
        print(f"| event feed ({args.events} events) | value |\n|---|---|")
        for name, value in results.items():
            print(f"| {name} | {value:,.1f} |")
    finally:
        if child is not None:
            procs.stop(child, grace_s=30)
        nats.stop()


async def _streams(url: str) -> None:
    nc = await connect(url, "bench-setup")
    try:
        await ensure_streams(nc.jetstream())
    finally:
        await nc.close()


if __name__ == "__main__":
    main()
