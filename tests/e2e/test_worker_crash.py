"""A router killed under load: nothing hangs, calls made while it restarts wait for it,
the calls it held are answered within seconds (503 `worker_lost`, or sent again when they
had not reached an upstream), and every call that reached the upstream is charged exactly
once, with the status its client saw."""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import orjson

from tests.e2e.conftest import charged, pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.openai_upstream import FakeOpenAI


def test_router_killed_mid_burst(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("router-crash")
    total = 300

    def call(i: int) -> tuple[int, str]:
        with gateway.client(key) as http:
            response = http.post("/v1/chat/completions", json={
                "model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"crash request {i}"}]})
            return response.status_code, response.headers["x-request-id"]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(call, i) for i in range(total)]
        wait_for(lambda: sum(f.done() for f in futures) >= total // 3, timeout=120, every=0.02)
        gateway.kill("router")
        time.sleep(1.0)  # calls arriving now find no router: they wait for the restart
        gateway.start("router")
        results = [f.result() for f in futures]
    assert time.monotonic() - started < 90  # nothing hung

    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] <= 8  # at most the calls the dead router held (one per client thread)
    assert statuses[200] >= total - 8

    ok = {request_id for status, request_id in results if status == 200}
    # Calls answered 503 may be charged too (the ingress's own usage event), so a row count is
    # no sign that every answered call is in: wait for the answered calls themselves.
    rows = wait_for(lambda: (r := pg_rows(gateway, "SELECT request_id FROM spend_ledger WHERE key_id = $1", key_id))
                    and ok <= {row["request_id"] for row in r} and r, timeout=60)
    charged = [r["request_id"] for r in rows]
    assert len(charged) == len(set(charged))  # never twice
    assert ok <= set(charged)  # every answered request is charged


@dataclass
class Outcome:
    request_id: str
    status: int  # HTTP status; a stream that ended in an error event counts as that error's status
    code: str | None
    ended: float  # monotonic


def _post(http: httpx.Client, model: str, tag: str) -> Outcome:
    response = http.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": tag}]})
    code = response.json()["error"]["code"] if response.status_code != 200 else None
    return Outcome(response.headers["x-request-id"], response.status_code, code, time.monotonic())


def _stream(http: httpx.Client, tag: str, first_chunk: threading.Event) -> Outcome:
    body = {"model": "slow-stream", "stream": True, "messages": [{"role": "user", "content": tag}]}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        last = b""
        for line in response.iter_lines():
            if line.startswith("data: "):
                last = line[6:].encode()
                first_chunk.set()
        request_id = response.headers["x-request-id"]
    if last == b"[DONE]":
        return Outcome(request_id, 200, None, time.monotonic())
    error = orjson.loads(last)["error"]  # the stream ended in an SSE error event
    return Outcome(request_id, 503 if error["code"] == "worker_lost" else 500, error["code"], time.monotonic())


def test_calls_a_killed_router_held_are_answered_at_once_and_charged_once(gateway: Gateway,
                                                                          fake_openai: FakeOpenAI) -> None:
    key, key_id = gateway.create_key("router-held-calls")
    tag = f"held-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    streams_started = [threading.Event() for _ in range(3)]

    def background(n: int) -> list[Outcome]:  # ~100 req/s of quick calls all along
        done = []
        with gateway.client(key) as http:
            while not stop.is_set():
                done.append(_post(http, "gpt-4o-mini", f"{tag} quick {n}"))
                time.sleep(0.04)
        return done

    def held_call(i: int) -> Outcome:  # the upstream takes 30 s: the router holds it when killed
        with gateway.client(key) as http:
            return _post(http, "hang", f"{tag} hang {i}")

    def held_stream(i: int) -> Outcome:  # 10 s of chunks: it has begun when the router is killed
        with gateway.client(key) as http:
            return _stream(http, f"{tag} stream {i}", streams_started[i])

    def upstream_calls(word: str) -> int:
        return sum(1 for r in fake_openai.requests if r.json and tag in str(r.json.get("messages")) and
                   word in str(r.json.get("messages")))

    with ThreadPoolExecutor(max_workers=12) as pool:
        quick = [pool.submit(background, n) for n in range(4)]
        hangs = [pool.submit(held_call, i) for i in range(3)]
        streams = [pool.submit(held_stream, i) for i in range(3)]
        wait_for(lambda: upstream_calls(" hang ") == 3 and all(e.is_set() for e in streams_started),
                 timeout=30, every=0.05)
        gateway.kill("router")  # kill -9
        killed = time.monotonic()
        held = [f.result() for f in hangs + streams]
        time.sleep(0.5)
        gateway.start("router")
        time.sleep(1.0)  # quick calls go on against the restarted router
        stop.set()
        quick_outcomes = [outcome for f in quick for outcome in f.result()]

    for outcome in held:  # every client whose call it held heard, with a 503, within seconds
        assert (outcome.status, outcome.code) == (503, "worker_lost"), outcome
        assert outcome.ended - killed < 5.0
    assert {o.status for o in quick_outcomes} <= {200, 503} and quick_outcomes

    # every call that reached the upstream: exactly one usage row, with the status its client saw
    reached = upstream_calls(tag)
    rows = charged(gateway, key_id, reached)
    status_of = {row["request_id"]: row["status"] for row in rows}
    for outcome in held:
        assert status_of[outcome.request_id] == "error"
    answered = [o for o in quick_outcomes if o.status == 200]
    assert all(status_of[o.request_id] == "ok" for o in answered)
    lost = [o for o in quick_outcomes if o.code == "worker_lost"]  # quick calls it held past the upstream
    assert all(status_of[o.request_id] == "error" for o in lost)
    assert len(answered) + len(held) + len(lost) == reached
