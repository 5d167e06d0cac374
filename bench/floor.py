"""The design's floor: JetGate's process shape with none of its logic, measured beside direct.

An edge (Starlette on uvicorn, uvloop, httptools: what the ingress runs on) takes the HTTP
request and sends it through `--stages` NATS hops (nats-py, queue groups, each stage
forwarding the call with the edge's reply subject as JetGate's stages do); the last stage
posts the body upstream with aiohttp (the router's client) and answers the edge's inbox.
With `--stages 0` the edge itself posts upstream. No auth, no validation, no accounting:
what is left is processes, wake-ups and the bus.

The last shape adds what the design records of every request, with nothing around it: the
edge publishes two JetStream events (as `request.received` and `request.completed`), the
last stage one (as `usage.recorded`), each acknowledged by the server, and a consumer
process takes them from a durable and acks each one (as accounting does, writing nothing).

    python -m bench.floor --rate 100 --seconds 20 --conns 32 --closed-seconds 10

prints one row per shape (direct, 0, 1, 2 stages, 2 stages with events): latency at a fixed
rate, from the scheduled send time (bench/loadgen.py), and CPU per request both at that
rate and at full load (`--conns` connections back to back, `--closed-seconds`; 0 skips it).
Everything it starts is stopped by PID at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import nats
import uvicorn
import uvloop
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench import footprint, procs
from bench.client import Target
from bench.loadgen import CHAT_PATH, Summary, chat_body, closed_loop, open_loop
from bench.loop import run_loop
from bench.run import MODEL, REPO, start_upstream
from jetgate.embedded.nats import EmbeddedNats
from jetgate.embedded.ports import free_port
from jetgate.supervisor import Child

SUBJECT = "floor.stage.{}"
EVENTS_STREAM, EVENTS = "FLOOR_EVENTS", "floor.events.{}"
EVENT = b'{"pad":"' + b"x" * 560 + b'"}'  # about the size of a request event's JSON


async def _upstream_post(session: aiohttp.ClientSession, url: str, body: bytes) -> bytes:
    async with session.post(url, data=body, headers={"content-type": "application/json"}) as response:
        return await response.read()


async def _event(js: JetStreamContext | None, kind: str) -> None:
    """One event on JetStream, its ack taken by nats-py and not awaited (the least a durable
    event can cost its publisher)."""
    if js is not None:
        await js.publish_async(EVENTS.format(kind), EVENT)


async def serve_stage(nats_url: str, index: int, last: bool, upstream: str, events: bool) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream() if events else None
    session = aiohttp.ClientSession()

    async def on_call(msg: Msg) -> None:
        if last:
            await nc.publish(msg.reply, await _upstream_post(session, upstream, msg.data))
            await _event(js, "usage")
        else:
            await nc.publish(SUBJECT.format(index + 1), msg.data, reply=msg.reply)

    await nc.subscribe(SUBJECT.format(index), queue=f"stage{index}", cb=on_call)
    await asyncio.Event().wait()


async def serve_consumer(nats_url: str) -> None:
    nc = await nats.connect(nats_url)

    async def settle(msg: Msg) -> None:
        await msg.ack()

    await nc.jetstream().subscribe(EVENTS.format(">"), durable="floor", manual_ack=True, cb=settle,
                                   pending_msgs_limit=100_000)
    await asyncio.Event().wait()


def serve_edge(nats_url: str, port: int, stages: int, upstream: str, events: bool) -> None:
    nc = Client()
    sessions: list[aiohttp.ClientSession] = []
    streams: list[JetStreamContext] = []

    async def chat(request: Request) -> Response:
        body = await request.body()
        js = streams[0] if streams else None
        await _event(js, "received")
        if stages == 0:
            answer = await _upstream_post(sessions[0], upstream, body)
        else:
            answer = (await nc.request(SUBJECT.format(0), body, timeout=10)).data
        await _event(js, "completed")
        return Response(answer, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await nc.connect(nats_url)
        sessions.append(aiohttp.ClientSession())
        if events:
            streams.append(nc.jetstream())
        yield

    app = Starlette(routes=[Route(CHAT_PATH, chat, methods=["POST"])], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", access_log=False,
                log_level="warning")


async def _create_events_stream(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    await nc.jetstream().add_stream(StreamConfig(name=EVENTS_STREAM, subjects=[EVENTS.format(">")],
                                                 storage=StorageType.FILE))
    await nc.close()


@dataclass
class Shape:
    name: str
    target: Target
    pids: dict[str, int]  # part (upstream, nats-server, edge, stage 0, ...) -> its pid


@dataclass
class Measured:
    fixed: Summary       # at the fixed rate
    cpu_ms: float        # per request at the fixed rate
    full: Summary | None  # closed loop
    full_cpu_ms: dict[str, float]  # per request at full load, by part


def _start(workdir: Path, name: str, args: list[str], port: int) -> Child:
    return procs.start(name, [sys.executable, "-m", "bench.floor", *args], workdir / f"{name}.log", env={},
                       cwd=REPO, port=port, ready_timeout_s=30, http=False)


def _pid(server: EmbeddedNats) -> int:
    assert server.process is not None
    return server.process.pid


def _cpu(pids: dict[str, int]) -> dict[str, footprint.Part]:
    """CPU time so far of each part (a process and what it forked), by its name here."""
    return {name: footprint.Part(cpu_s=footprint.cpu_seconds(pid)) for name, pid in pids.items()}


def _shape(workdir: Path, server: EmbeddedNats, children: list[Child], upstream: str, body: bytes,
           stages: int, events: bool) -> Shape:
    pids = {"upstream": children[0].pid, "nats-server": _pid(server)}
    tag = f"{stages}{'e' if events else ''}"
    flags = ["--events"] if events else []
    if events:
        child = _start(workdir, f"consumer{tag}", ["consumer", "--nats", server.url], server.port)
        children.append(child)
        pids["consumer"] = child.pid
    for index in range(stages):
        child = _start(workdir, f"stage{tag}-{index}",
                       ["stage", "--nats", server.url, "--index", str(index), "--upstream", upstream,
                        *(["--last"] if index == stages - 1 else []), *flags], server.port)
        children.append(child)
        pids[f"stage {index}"] = child.pid
    port = free_port()
    child = _start(workdir, f"edge{tag}", ["edge", "--nats", server.url, "--port", str(port),
                                           "--stages", str(stages), "--upstream", upstream, *flags], port)
    children.append(child)
    pids["edge"] = child.pid
    name = f"edge + {stages} NATS stage{'s' if stages != 1 else ''}" + (" + 3 JetStream events, consumed" if events
                                                                       else "")
    return Shape(name, Target(port, CHAT_PATH, body), pids)


def _measure(shape: Shape, args: argparse.Namespace) -> Measured:
    print(f"  {shape.name}: {args.rate:g} req/s for {args.seconds:g}s ...", flush=True)
    before = _cpu(shape.pids)
    fixed = run_loop(open_loop(shape.target, rate=args.rate, seconds=args.seconds, warmup_s=2))
    cpu_ms = sum(footprint.per_request(before, _cpu(shape.pids), round(args.rate * (args.seconds + 2))).values())
    if not args.closed_seconds:
        return Measured(fixed, cpu_ms, None, {})
    print(f"  {shape.name}: {args.conns} connections for {args.closed_seconds:g}s ...", flush=True)
    before = _cpu(shape.pids)
    full = run_loop(closed_loop(shape.target, conns=args.conns, seconds=args.closed_seconds))
    return Measured(fixed, cpu_ms, full, footprint.per_request(before, _cpu(shape.pids), full.ok))


def measure_shapes(args: argparse.Namespace) -> dict[str, Measured]:
    workdir = Path(tempfile.mkdtemp(prefix="jetgate-floor-"))
    server = EmbeddedNats(workdir / "nats").start()
    children: list[Child] = []
    results: dict[str, Measured] = {}
    try:
        run_loop(_create_events_stream(server.url))
        upstream_port = free_port()
        children.append(start_upstream(workdir, upstream_port))
        upstream = f"http://127.0.0.1:{upstream_port}{CHAT_PATH}"
        body = chat_body(MODEL, False)
        shapes = [Shape("direct", Target(upstream_port, CHAT_PATH, body), {"upstream": children[0].pid})]
        shapes += [_shape(workdir, server, children, upstream, body, stages, False) for stages in range(3)]
        shapes.append(_shape(workdir, server, children, upstream, body, 2, True))
        for shape in shapes:
            results[shape.name] = _measure(shape, args)
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
    stage.add_argument("--events", action="store_true")
    consumer = sub.add_parser("consumer")
    consumer.add_argument("--nats", required=True)
    edge = sub.add_parser("edge")
    edge.add_argument("--nats", required=True)
    edge.add_argument("--port", type=int, required=True)
    edge.add_argument("--stages", type=int, required=True)
    edge.add_argument("--upstream", required=True)
    edge.add_argument("--events", action="store_true")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--closed-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.role == "stage":
        uvloop.run(serve_stage(args.nats, args.index, args.last, args.upstream, args.events))
    elif args.role == "consumer":
        uvloop.run(serve_consumer(args.nats))
    elif args.role == "edge":
        serve_edge(args.nats, args.port, args.stages, args.upstream, args.events)
    else:
        if not (0 < args.rate <= 5_000 and 0 < args.seconds <= 300 and 0 <= args.closed_seconds <= 300
                and 0 < args.conns <= 256):
            parser.error("out of range")
        print(table(measure_shapes(args)))


def table(results: dict[str, Measured]) -> str:
    direct = results["direct"].fixed.p50_ms or 0.0
    rows = ["| shape | p50 ms | p90 ms | p99 ms | added p50 ms | CPU ms per request | ok/sent "
            "| full load req/s | CPU ms per request at full load |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in results.items():
        s = m.fixed
        rate = "—" if m.full is None else f"{m.full.ok_rps:,.0f}"
        full = "—" if not m.full_cpu_ms else f"{sum(m.full_cpu_ms.values()):.2f}: " + ", ".join(
            f"{part} {ms:.2f}" for part, ms in m.full_cpu_ms.items())
        rows.append(f"| {name} | {s.p50_ms} | {s.p90_ms} | {s.p99_ms} | {(s.p50_ms or 0) - direct:+.2f} | "
                    f"{m.cpu_ms:.2f} | {s.ok}/{s.sent} | {rate} | {full} |")
    return "\n" + "\n".join(rows)


if __name__ == "__main__":
    main()
