"""nats-server stalled (SIGSTOP, its connections left open) under load, then thawed: how
long each request waits and what it gets, in two-second buckets of when it was sent.

    python -m bench.nats_stall --rate 20 --seconds 30 --stall-at 3 --stall-for 20

Starts bench/upstream.py and `jetgate up` (bench.run's `gateway_on_upstream`), finds the gateway's
nats-server among its children, and stops everything by PID at the end (SIGCONT first).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import httpx

from bench import footprint, procs
from bench.loadgen import CHAT_PATH
from bench.run import MODEL, gateway_on_upstream
from jetgate.supervisor import Child


@dataclass(frozen=True)
class Outcome:
    sent_at: float  # seconds since the start
    result: str  # "200", "503 service_unavailable", or the client's exception
    waited_s: float


def nats_pid(gateway: Child) -> int:
    for pid, _ in procs.descendants(gateway.pid):
        with contextlib.suppress(OSError):
            if footprint.part_of(pid) == "nats-server":
                return pid
    raise SystemExit("the gateway's nats-server was not found")


async def one(client: httpx.AsyncClient, began: float) -> Outcome:
    sent = time.monotonic()
    try:
        response = await client.post(CHAT_PATH, json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
        result = "200" if response.status_code == 200 else f"{response.status_code} {response.json()['error']['code']}"
    except httpx.HTTPError as exc:
        result = type(exc).__name__
    return Outcome(sent - began, result, time.monotonic() - sent)


async def load(port: int, key: str, nats: int, args: argparse.Namespace) -> list[Outcome]:
    limits = httpx.Limits(max_connections=10_000, max_keepalive_connections=10_000)  # never the client's queue
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {key}"},
                                 timeout=args.timeout, limits=limits) as client:
        began = time.monotonic()
        tasks: list[asyncio.Task[Outcome]] = []
        stopped = thawed = False
        for n in range(round(args.rate * args.seconds)):
            at = n / args.rate
            await asyncio.sleep(max(0.0, began + at - time.monotonic()))
            if not stopped and at >= args.stall_at:
                os.kill(nats, signal.SIGSTOP)
                stopped = True
            if stopped and not thawed and at >= args.stall_at + args.stall_for:
                os.kill(nats, signal.SIGCONT)
                thawed = True
            tasks.append(asyncio.create_task(one(client, began)))
        if stopped and not thawed:
            os.kill(nats, signal.SIGCONT)
        return list(await asyncio.gather(*tasks))


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print(f"nats-server stopped at {args.stall_at:g} s for {args.stall_for:g} s; {args.rate:g} req/s for {args.seconds:g} s")
    print("| sent at s | answers | longest wait s |")
    print("|---:|---|---:|")
    buckets: dict[int, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        buckets[int(outcome.sent_at // 2) * 2].append(outcome)
    for start in sorted(buckets):
        counts = Counter(o.result for o in buckets[start])
        answers = ", ".join(f"{n} × {result}" for result, n in sorted(counts.items()))
        print(f"| {start}–{start + 2} | {answers} | {max(o.waited_s for o in buckets[start]):.2f} |")
    print(f"longest wait of all: {max(o.waited_s for o in outcomes):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--stall-at", type=float, default=3.0)
    parser.add_argument("--stall-for", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=120.0, help="the client's own, per request")
    args = parser.parse_args()
    if not (0 < args.rate <= 1000 and 0 < args.seconds <= 600 and 0 <= args.stall_at < args.seconds
            and 0 < args.stall_for <= 600 and 0 < args.timeout <= 900):
        parser.error("out of range")
    key = "jg-stall-" + secrets.token_urlsafe(24)
    with gateway_on_upstream("stall", key) as (gateway, gateway_port):
        nats = nats_pid(gateway)
        try:
            report(asyncio.run(load(gateway_port, key, nats, args)), args)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(nats, signal.SIGCONT)


if __name__ == "__main__":
    main()
