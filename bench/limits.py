"""What admission with limits costs the ingress's hot path, measured in-process.

    python -m bench.limits [--requests 20000] [--levels 4]

Starts an embedded nats-server (JetStream, the limits KV bucket), then admits and settles
`--requests` chat requests one after another through the ingress's `Limiter`: first for a
key with no limits, then for one whose every level (org, team, user, key) sets
`rpm_limit`, `tpm_limit` and `max_budget` (limits high enough that nothing is refused, so
the steady state is measured: local allowances), then for one whose limits the run uses up
to about 90 % (leases come more often as they shrink; budget warnings). Prints p50, p90,
p99 and max of one admission plus its settlement, in microseconds, and the KV leases made.
Everything it starts is stopped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from jetgate.embedded.nats import EmbeddedNats
from services.ingress.limits.admission import Limiter
from services.ingress.limits.store import LimitStore, open_bucket
from shared.bus import connect
from shared.events import BudgetWarningEvent, Principal
from shared.pipeline import Endpoint
from shared.protocol import CallUsage, Route, Target
from shared.settings import LimitsSettings
from shared.tenancy import Level, LevelKind, Limits

ROUTE = Route(model="gpt-4o-mini", targets=[Target(provider="p", model="gpt-4o-mini")],
              input_per_million=Decimal("0.15"), output_per_million=Decimal("0.60"))
BODY: dict[str, Any] = {"model": "gpt-4o-mini", "max_tokens": 64,
                        "messages": [{"role": "user", "content": "Say hello in five words, please."}]}
USAGE = CallUsage(prompt_tokens=9, completion_tokens=7, cost=Decimal("0.0000055"))


class CountingStore(LimitStore):
    writes = 0

    async def write(self, key: str, value: Any) -> int | None:
        CountingStore.writes += 1
        return await super().write(key, value)


def _principal(levels: int, run: str, requests: int | None = None) -> Principal:
    """Limits nothing reaches; with `requests`, limits that `requests` (and the warm-up) use up
    to about 90 %: leases come often, shrinking, and the budget warns."""
    if requests is None:
        limits = Limits(rpm_limit=10_000_000, tpm_limit=1_000_000_000, max_budget=Decimal(1_000_000),
                        budget_duration="1mo")
    else:
        total = (requests + 1000) * 10 // 9
        limits = Limits(rpm_limit=total, tpm_limit=total * 16, max_budget=Decimal(total) * Decimal("0.0000400"),
                        budget_duration="1mo")
    chosen = list(LevelKind)[:levels]
    return Principal(key_id=f"key-{run}", org_id=f"org-{run}",
                     levels=[Level(kind=kind, id=f"{kind.value}-{run}", limits=limits) for kind in chosen])


async def _measure(limiter: Limiter, principal: Principal, requests: int) -> list[float]:
    timings: list[float] = []
    for _ in range(requests):
        began = time.perf_counter()
        ticket = await limiter.admit(principal, Endpoint.CHAT, ROUTE, None, lambda: BODY)
        ticket.settle(USAGE, 0)
        timings.append((time.perf_counter() - began) * 1e6)
    return timings


def _row(name: str, timings: list[float], writes: int) -> str:
    ordered = sorted(timings)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return (f"| {name} | {statistics.median(ordered):.1f} | {at(0.9):.1f} | {at(0.99):.1f} | {ordered[-1]:.0f} "
            f"| {writes} |")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp:
        server = EmbeddedNats(Path(tmp)).start()
        try:
            nc = await connect(server.url, "bench-limits")
            kv = await open_bucket(nc.jetstream())
            events: list[BudgetWarningEvent] = []
            limiter = Limiter(CountingStore(kv, 2.0), LimitsSettings(), events.append)
            run = str(int(time.time()))
            print("| admission + settlement | p50 µs | p90 µs | p99 µs | max µs | KV writes |")
            print("|---|---:|---:|---:|---:|---:|")
            await _measure(limiter, Principal(key_id="warm"), 1000)
            timings = await _measure(limiter, Principal(key_id="none"), args.requests)
            print(_row("no limits (no levels)", timings, 0))
            principal = _principal(args.levels, run)
            await _measure(limiter, principal, 1000)  # first leases, the code warm
            CountingStore.writes = 0
            timings = await _measure(limiter, principal, args.requests)
            print(_row(f"{args.levels} levels × rpm, tpm, budget", timings, CountingStore.writes))
            principal = _principal(args.levels, run + "-tight", args.requests)
            await _measure(limiter, principal, 1000)
            CountingStore.writes = 0
            timings = await _measure(limiter, principal, args.requests)
            print(_row(f"{args.levels} levels, used up to ~90 % (leases shrink)", timings, CountingStore.writes))
            await nc.close()
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--levels", type=int, default=4, choices=range(1, 5))
    asyncio.run(main(parser.parse_args()))
