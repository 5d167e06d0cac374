"""The design's floor: JetGate's process shape with none of its logic, measured beside direct.

An edge (Starlette on uvicorn, uvloop, httptools: what the ingress runs on) takes the HTTP
request and sends it through `--stages` NATS hops (nats-py, queue groups, each stage
forwarding the call with the edge's reply subject as JetGate's stages do); the last stage
posts the body upstream with aiohttp (the router's client) and answers the edge's inbox.
With `--stages 0` the edge itself posts upstream. No auth, no validation, no events, no
accounting: what is left is processes, wake-ups and the bus.

    python -m bench.floor --rate 100 --seconds 20

prints one row per shape (direct, 0, 1, 2 stages): latency at a fixed rate, from the
scheduled send time (bench/loadgen.py). Everything it starts is stopped by PID at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import nats
import uvicorn
import uvloop
from nats.aio.client import Client
from nats.aio.msg import Msg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench import footprint, procs
from bench.client import Target
from bench.loadgen import CHAT_PATH, Summary, chat_body, open_loop
from bench.loop import run_loop
from bench.run import MODEL, REPO, start_upstream
from jetgate.embedded.nats import EmbeddedNats
from jetgate.embedded.ports import free_port
from jetgate.supervisor import Child

SUBJECT = "floor.stage.{}"


async def _upstream_post(session: aiohttp.ClientSession, url: str, body: bytes) -> bytes:
    async with session.post(url, data=body, headers={"content-type": "application/json"}) as response:
        return await response.read()


async def serve_stage(nats_url: str, index: int, last: bool, upstream: str) -> None:
    nc = await nats.connect(nats_url)
    session = aiohttp.ClientSession()

    async def on_call(msg: Msg) -> None:
        if last:
            await nc.publish(msg.reply, await _upstream_post(session, upstream, msg.data))
        else:
            await nc.publish(SUBJECT.format(index + 1), msg.data, reply=msg.reply)

    await nc.subscribe(SUBJECT.format(index), queue=f"stage{index}", cb=on_call)
    await asyncio.Event().wait()


def serve_edge(nats_url: str, port: int, stages: int, upstream: str) -> None:
    nc = Client()
    sessions: list[aiohttp.ClientSession] = []

    async def chat(request: Request) -> Response:
        body = await request.body()
        if stages == 0:
            answer = await _upstream_post(sessions[0], upstream, body)
        else:
            answer = (await nc.request(SUBJECT.format(0), body, timeout=10)).data
        return Response(answer, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await nc.connect(nats_url)
        sessions.append(aiohttp.ClientSession())
        yield

    app = Starlette(routes=[Route(CHAT_PATH, chat, methods=["POST"])], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", access_log=False,
                log_level="warning")


def _start(workdir: Path, name: str, args: list[str], port: int) -> Child:
    return procs.start(name, [sys.executable, "-m", "bench.floor", *args], workdir / f"{name}.log", env={},
                       cwd=REPO, port=port, ready_timeout_s=30, http=False)


def _pid(server: EmbeddedNats) -> int:
    assert server.process is not None
    return server.process.pid


def _cpu_s(pids: list[int]) -> float:
    return sum(part.cpu_s for pid in pids for part in footprint.sample(pid).values())


def measure_shapes(args: argparse.Namespace) -> dict[str, tuple[Summary, float]]:
    workdir = Path(tempfile.mkdtemp(prefix="jetgate-floor-"))
    server = EmbeddedNats(workdir / "nats").start()
    children: list[Child] = []
    results: dict[str, tuple[Summary, float]] = {}
    try:
        upstream_port = free_port()
        children.append(start_upstream(workdir, upstream_port))
        upstream = f"http://127.0.0.1:{upstream_port}{CHAT_PATH}"
        body = chat_body(MODEL, False)
        shapes: list[tuple[str, Target, list[int]]] = [("direct", Target(upstream_port, CHAT_PATH, body),
                                                        [children[0].pid])]
        for stages in range(3):
            first = len(children)
            for index in range(stages):
                children.append(_start(workdir, f"stage{stages}-{index}",
                                       ["stage", "--nats", server.url, "--index", str(index), "--upstream", upstream,
                                        *(["--last"] if index == stages - 1 else [])], server.port))
            port = free_port()
            children.append(_start(workdir, f"edge{stages}", ["edge", "--nats", server.url, "--port", str(port),
                                                             "--stages", str(stages), "--upstream", upstream], port))
            shapes.append((f"edge + {stages} NATS stage{'s' if stages != 1 else ''}", Target(port, CHAT_PATH, body),
                           [children[0].pid, _pid(server), *(c.pid for c in children[first:])]))
        for name, target, pids in shapes:
            print(f"  {name}: {args.rate:g} req/s for {args.seconds:g}s ...", flush=True)
            before = _cpu_s(pids)
            summary = run_loop(open_loop(target, rate=args.rate, seconds=args.seconds, warmup_s=2))
            sent = round(args.rate * (args.seconds + 2))
            results[name] = (summary, (_cpu_s(pids) - before) * 1000 / sent)
    finally:
        for child in reversed(children):
            procs.stop(child, grace_s=5)
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="role")
    stage = sub.add_parser("stage")
    stage.add_argument("--nats", required=True)
    stage.add_argument("--index", type=int, required=True)
    stage.add_argument("--last", action="store_true")
    stage.add_argument("--upstream", required=True)
    edge = sub.add_parser("edge")
    edge.add_argument("--nats", required=True)
    edge.add_argument("--port", type=int, required=True)
    edge.add_argument("--stages", type=int, required=True)
    edge.add_argument("--upstream", required=True)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if args.role == "stage":
        uvloop.run(serve_stage(args.nats, args.index, args.last, args.upstream))
    elif args.role == "edge":
        serve_edge(args.nats, args.port, args.stages, args.upstream)
    else:
        if not (0 < args.rate <= 5_000 and 0 < args.seconds <= 300):
            parser.error("out of range")
        results = measure_shapes(args)
        direct = results["direct"][0].p50_ms or 0.0
        print("\n| shape | p50 ms | p90 ms | p99 ms | added p50 ms | CPU ms per request | ok/sent |\n"
              "|---|---:|---:|---:|---:|---:|---:|")
        for name, (s, cpu) in results.items():
            print(f"| {name} | {s.p50_ms} | {s.p90_ms} | {s.p99_ms} | {(s.p50_ms or 0) - direct:+.2f} | {cpu:.2f} | "
                  f"{s.ok}/{s.sent} |")


if __name__ == "__main__":
    main()
