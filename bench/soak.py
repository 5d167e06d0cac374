"""Memory and CPU over a long run: the gateway under closed-loop load until `--requests`
have been answered, sampled after every slice, so growth shows as a trend, not a guess.

    python -m bench.soak --requests 100000 --conns 32 --slice-seconds 20

Starts bench/upstream.py and `jetgate up` (bench.run's `gateway_on_upstream`); everything it
starts is stopped by PID at the end, also on errors and Ctrl-C.
"""
from __future__ import annotations

import argparse
import secrets

from bench import footprint
from bench.client import Target
from bench.loadgen import CHAT_PATH, chat_body, closed_loop
from bench.loop import run_loop
from bench.run import MODEL, gateway_on_upstream

PARTS = ("ingress", "guardrails", "router", "accounting", "nats-server", "postgres")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--slice-seconds", type=float, default=20.0)
    args = parser.parse_args()
    if not (0 < args.requests <= 10_000_000 and 0 < args.conns <= 512 and 1 <= args.slice_seconds <= 600):
        parser.error("out of range")
    key = "jg-soak-" + secrets.token_urlsafe(24)
    with gateway_on_upstream("soak", key) as (gateway, gateway_port):
        target = Target(gateway_port, CHAT_PATH, chat_body(MODEL, False), key)
        print("| requests | req/s | errors | " + " | ".join(f"{p} RSS MB" for p in PARTS) + " | CPU ms/request |")
        print("|" + "---:|" * (len(PARTS) + 4))
        done = 0
        before = footprint.sample(gateway.pid)
        while done < args.requests:
            summary = run_loop(closed_loop(target, conns=args.conns, seconds=args.slice_seconds))
            done += summary.ok
            after = footprint.sample(gateway.pid)
            cpu = sum(footprint.per_request(before, after, summary.sent).values())
            rss = " | ".join(f"{after[p].rss_mb:.0f}" if p in after else "-" for p in PARTS)
            print(f"| {done:,} | {summary.ok_rps:,.0f} | {sum(summary.errors.values())} | {rss} | {cpu:.2f} |",
                  flush=True)
            before = after


if __name__ == "__main__":
    main()
