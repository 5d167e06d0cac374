"""Load generator for OpenAI-compatible chat endpoints on 127.0.0.1.

* open loop (`open`): requests are scheduled at a fixed rate on a fixed timeline, whatever
  the answers do; latency runs from each request's *scheduled* send time to the end of its
  body, so a slow server cannot hide its queueing (no coordinated omission).
* closed loop (`closed`): N connections each send the next request as soon as the last
  answer is in, for D seconds: the maximum throughput at that concurrency.

Bounded: a fixed number of requests (open) or a fixed duration (closed), a timeout on every
request, at most `max_conns` connections. An answer counts as ok when it is a 200 and, for
streams, ends with `data: [DONE]`.

    python -m bench.loadgen --port 18080 open --rate 100 --seconds 20
    python -m bench.loadgen --port 18080 --stream closed --conns 32 --seconds 10
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from dataclasses import asdict, dataclass, field

from bench.client import Connection, Reply, Target
from bench.loop import run_loop

CHAT_PATH = "/v1/chat/completions"
_SPIN_MAX_RATE = 500  # req/s up to which the scheduler spins through the last millisecond
_NET_ERRORS = (OSError, EOFError, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError)


def chat_body(model: str, stream: bool) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer concisely and accurately."},
            {"role": "user", "content": "What is the capital of France? Give one interesting fact about it."},
        ],
        "temperature": 0.7,
        "max_tokens": 256,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


@dataclass
class Tally:
    stream: bool
    latencies_ms: list[float] = field(default_factory=list)
    first_byte_ms: list[float] = field(default_factory=list)
    send_lag_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def add(self, reply: Reply, t_start: float, t_sent: float) -> None:
        if reply.status != 200:
            self.error(f"http_{reply.status}")
        elif self.stream and b"[DONE]" not in reply.tail:
            self.error("stream_incomplete")
        else:
            now = time.perf_counter()
            self.latencies_ms.append((now - t_start) * 1000)
            self.first_byte_ms.append((reply.t_first_body - t_sent) * 1000)


@dataclass(frozen=True)
class Summary:
    mode: str
    seconds: float
    sent: int
    ok: int
    errors: dict[str, int]
    ok_rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    first_byte_p50_ms: float | None
    first_byte_p99_ms: float | None
    send_lag_p99_ms: float | None

    @classmethod
    def of(cls, mode: str, tally: Tally, sent: int, seconds: float) -> Summary:
        lat, fb, lag = sorted(tally.latencies_ms), sorted(tally.first_byte_ms), sorted(tally.send_lag_ms)
        return cls(mode, round(seconds, 2), sent, len(lat), dict(tally.errors), round(len(lat) / max(seconds, 1e-9), 1),
                   _pct(lat, 50), _pct(lat, 90), _pct(lat, 99), _pct(lat, 100), _pct(fb, 50), _pct(fb, 99),
                   _pct(lag, 99))


def _pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted values, in ms rounded to 0.01."""
    if not values:
        return None
    return round(values[max(0, min(len(values) - 1, math.ceil(p / 100 * len(values)) - 1))], 2)


class Pool:
    """Idle keep-alive connections to one port, at most `limit` in use at once."""

    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.idle: list[Connection] = []
        self.slots = asyncio.Semaphore(limit)

    async def exchange(self, request: bytes) -> Reply:
        """Send on an idle connection (or a new one). When the server closed an idle keep-alive
        connection just as it was reused, and answered nothing, send once more on a new one."""
        await self.slots.acquire()
        conn: Connection | None = None
        try:
            conn = self._idle_connection() or await Connection.open(self.port)
            try:
                return await conn.send(request)
            except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                nothing_read = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
                if conn.answered == 0 or not nothing_read:
                    raise
            conn = await Connection.open(self.port)
            return await conn.send(request)
        finally:
            if conn is not None and conn.reusable:
                self.idle.append(conn)
            self.slots.release()

    def _idle_connection(self) -> Connection | None:
        while self.idle:
            conn = self.idle.pop()
            if conn.reusable:
                return conn
            conn.close()
        return None

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


async def open_loop(target: Target, *, rate: float, seconds: float, warmup_s: float = 2.0, timeout_s: float = 10.0,
                    stream: bool = False, max_conns: int = 512) -> Summary:
    """Send `rate * (warmup_s + seconds)` requests on a fixed schedule; report the measured part."""
    request = target.request_bytes()
    n_warm, n_measured = round(rate * warmup_s), round(rate * seconds)
    warm, measured = Tally(stream), Tally(stream)
    pool = Pool(target.port, max_conns)

    async def one(intended: float, tally: Tally) -> None:
        t_sent = time.perf_counter()
        tally.send_lag_ms.append((t_sent - intended) * 1000)
        try:
            async with asyncio.timeout(timeout_s):
                reply = await pool.exchange(request)
        except TimeoutError:
            tally.error("timeout")
        except _NET_ERRORS as exc:
            tally.error(type(exc).__name__)
        else:
            tally.add(reply, intended, t_sent)

    tasks: set[asyncio.Task[None]] = set()
    t0 = time.perf_counter() + 0.05
    for i in range(n_warm + n_measured):
        intended = t0 + i / rate
        await _until(intended, spin=rate <= _SPIN_MAX_RATE)
        task = asyncio.create_task(one(intended, warm if i < n_warm else measured))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=timeout_s + 5)
    pool.close()
    return Summary.of(f"open {rate:g} req/s", measured, n_measured, seconds)


async def _until(when: float, spin: bool) -> None:
    """Sleep until `when`. Event-loop timers fire on whole milliseconds, so at low rates the
    last millisecond is spent yielding to the loop, which keeps send lag in microseconds."""
    delay = when - time.perf_counter()
    if not spin:
        if delay > 0:
            await asyncio.sleep(delay)
        return
    if delay > 0.0015:
        await asyncio.sleep(delay - 0.0015)
    while time.perf_counter() < when:
        await asyncio.sleep(0)


async def closed_loop(target: Target, *, conns: int, seconds: float, timeout_s: float = 10.0,
                      stream: bool = False) -> Summary:
    """`conns` connections, each sending back to back until `seconds` have passed."""
    request = target.request_bytes()
    tally = Tally(stream)
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        nonlocal sent
        conn: Connection | None = None
        while time.perf_counter() < deadline:
            t_sent = time.perf_counter()
            sent += 1
            try:
                async with asyncio.timeout(timeout_s):
                    if conn is None or conn.closed:
                        conn = await Connection.open(target.port)
                    reply = await conn.send(request)
            except (TimeoutError, *_NET_ERRORS) as exc:
                tally.error("timeout" if isinstance(exc, TimeoutError) else type(exc).__name__)
                await asyncio.sleep(0.01)  # a refused or reset connection must not spin
            else:
                tally.add(reply, t_sent, t_sent)
        if conn is not None:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    return Summary.of(f"closed {conns} conns", tally, sent, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="target port on 127.0.0.1")
    parser.add_argument("--path", default=CHAT_PATH)
    parser.add_argument("--key", default=None, help="sent as Authorization: Bearer")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--stream", action="store_true", help='"stream": true with include_usage')
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    modes = parser.add_subparsers(dest="mode", required=True)
    open_mode = modes.add_parser("open", help="fixed rate")
    open_mode.add_argument("--rate", type=float, default=100.0)
    open_mode.add_argument("--seconds", type=float, default=20.0)
    open_mode.add_argument("--warmup", type=float, default=2.0)
    closed_mode = modes.add_parser("closed", help="max throughput")
    closed_mode.add_argument("--conns", type=int, default=32)
    closed_mode.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not (0 < args.seconds <= 3600) or (args.mode == "open" and not 0 < args.rate <= 100_000):
        parser.error("seconds must be in (0, 3600] and rate in (0, 100000]")
    target = Target(args.port, args.path, chat_body(args.model, args.stream), args.key)
    if args.mode == "open":
        summary = run_loop(open_loop(target, rate=args.rate, seconds=args.seconds, warmup_s=args.warmup,
                                     timeout_s=args.timeout, stream=args.stream))
    else:
        summary = run_loop(closed_loop(target, conns=args.conns, seconds=args.seconds, timeout_s=args.timeout,
                                       stream=args.stream))
    print(json.dumps(asdict(summary)))


if __name__ == "__main__":
    main()
