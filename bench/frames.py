"""What answers of any size cost the small-payload hot path: one reply over the bus, before
and after part frames, measured in-process on a real nats-server.

    python -m bench.frames [--requests 5000] [--rounds 3]

A stand-in last stage answers each call on the caller's inbox; the caller is the ingress's
own `PipelineClient`. "before" answers as the bus did before part frames: one publish with
the reply headers, however large. "after" answers with `send_reply` (the size check that
splits large answers into `part` frames; a small answer is still one message), and the
caller joins parts as it does now. Both variants run interleaved, `--rounds` times each, on
the same connections, for a 1 KiB chat-sized answer. Prints p50/p90/p99 of one round trip in
microseconds per variant. Everything it starts is stopped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from nats.aio.client import Client
from nats.aio.msg import Msg

from jetgate.embedded.nats import EmbeddedNats
from services.ingress.calls import PipelineClient
from shared.bus import connect
from shared.events import Principal
from shared.pipeline import Endpoint, Stage
from shared.protocol import Call, CallEnvelope, Route, Target, reply_headers, send_reply
from shared.redact import redact_content
from shared.settings import IngressSettings

ANSWER = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [' + b'{"text": "' + b"x" * 900 + b'"}]}'
Answer = Callable[[Client, str], Awaitable[None]]


async def before(nc: Client, inbox: str) -> None:
    await nc.publish(inbox, redact_content(ANSWER), headers=reply_headers(200))


async def after(nc: Client, inbox: str) -> None:
    await send_reply(nc, inbox, ANSWER)


def new_call() -> Call:
    envelope = CallEnvelope(call_id=uuid.uuid4().hex, request_id=uuid.uuid4().hex, principal=Principal(key_id="k"),
                            endpoint=Endpoint.CHAT, deadline=time.time() + 30,
                            route=Route(model="m", targets=[Target(provider="p", model="m")]), stages=[Stage.ROUTER])
    return Call(envelope, b'{"model": "m", "messages": []}')


async def measure(pipeline: PipelineClient, requests: int) -> list[float]:
    took = []
    for _ in range(requests):
        began = time.perf_counter()
        reply = await pipeline.call(new_call())
        took.append((time.perf_counter() - began) * 1e6)
        assert reply.body == ANSWER
    return took


def summary(name: str, took: list[float]) -> str:
    q = statistics.quantiles(took, n=100)
    return f"| {name} | {len(took):,} | {q[49]:.0f} | {q[89]:.0f} | {q[98]:.0f} |"


async def run(requests: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        server = EmbeddedNats(Path(home)).start()
        try:
            worker, caller = await connect(server.url, "bench-worker"), await connect(server.url, "bench-caller")
            variant: dict[str, Answer] = {"answer": before}

            async def on_call(msg: Msg) -> None:
                await variant["answer"](worker, msg.reply)

            await worker.subscribe(new_call().subject(), cb=on_call)
            await worker.flush()
            pipeline = PipelineClient(caller, IngressSettings())
            await measure(pipeline, 500)  # warm up
            results: dict[str, list[float]] = {"before (one publish)": [], "after (send_reply, parts)": []}
            for _ in range(rounds):
                for name, answer in (("before (one publish)", before), ("after (send_reply, parts)", after)):
                    variant["answer"] = answer
                    results[name] += await measure(pipeline, requests)
            print("| variant | calls | p50 µs | p90 µs | p99 µs |\n|---|---:|---:|---:|---:|")
            for name, took in results.items():
                print(summary(name, took))
            await worker.close()
            await caller.close()
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.rounds))


if __name__ == "__main__":
    main()
