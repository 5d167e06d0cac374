"""nats-server killed with SIGKILL under load, restarted by the supervisor as under
`jetgate up`: requests while it is away get a fast 503, never a hang; serving resumes by
itself; nothing accepted is lost, and what reached the upstream is charged once, as seen."""
from __future__ import annotations

import json
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from jetgate.embedded.children import NATS_CHILD
from services.router.providers.openai import payloads as p
from tests.e2e.conftest import pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.e2e.outcomes import Outcome, assert_charged_as_seen, chat, reached_upstream
from tests.fakes.openai_upstream import FakeOpenAI

WORKER_TIMEOUT_S = 5.0  # JETGATE_INGRESS__WORKER_TIMEOUT_S of the e2e gateway


def test_nats_server_killed_under_load(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    key, key_id = gateway.create_key("nats-killed")
    tag = f"nats-outage-{uuid.uuid4().hex[:8]}"
    total = 150
    nats = gateway.supervisor.children[NATS_CHILD]
    with gateway.supervising(), ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(chat, gateway, key, tag, n) for n in range(total)]
        wait_for(lambda: sum(f.done() for f in futures) >= total // 3, timeout=120, every=0.02)
        nats.kill()  # SIGKILL, reaped; the supervisor's loop brings it back on its port and store
        outcomes: list[Outcome] = [f.result() for f in futures]

        def served_again() -> bool:
            outcomes.append(chat(gateway, key, tag, len(outcomes)))
            return outcomes[-1].status == 200

        # serving again by itself, without anyone restarting a service
        wait_for(served_again, timeout=10, every=0.1)
    assert nats.crashes == 1 and nats.alive()

    statuses = Counter(o.status for o in outcomes)
    assert statuses[200] >= total // 3 and set(statuses) <= {200, 503, 504}, statuses
    refused = [o for o in outcomes if o.status == 503]
    assert all(o.code in {"bus_unavailable", "service_unavailable"} for o in refused), Counter(o.code for o in refused)
    # a 503 is an answer, not a timeout: none of them sat out the worker timeout
    assert all(o.seconds < WORKER_TIMEOUT_S for o in refused if o.code == "bus_unavailable")

    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        assert http.get("/ready").json()["checks"]["nats"] == "ok"
    outcomes.append(chat(gateway, key, tag, len(outcomes)))
    assert outcomes[-1].status == 200
    assert_charged_as_seen(gateway, fake_openai, key_id, tag, outcomes)


def _restart_nats(gateway: Gateway) -> None:
    """The supervisor brings nats-server back (as under `jetgate up`); serving again (asked
    with the master key: the test's own key has the one call under test)."""
    key = gateway.master_key
    nats = gateway.supervisor.children[NATS_CHILD]
    with gateway.supervising():
        wait_for(nats.alive, timeout=30, every=0.05)

        def served() -> bool:
            with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=10) as http:
                return http.post("/v1/chat/completions", json={
                    "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "back?"}]}).status_code == 200

        wait_for(served, timeout=30, every=0.1)


def _one_row_as_seen(gateway: Gateway, key_id: str, request_id: str | None) -> tuple[Any, dict[str, Any]]:
    """The call's one ledger row and its one ClickHouse row (by status), once both say `error`."""
    def ledger() -> list[Any]:
        return pg_rows(gateway, "SELECT request_id, status, prompt_tokens, completion_tokens, cost FROM spend_ledger "
                                "WHERE key_id = $1 AND request_id = $2", key_id, request_id)

    def analytics() -> list[dict[str, Any]]:
        return [row for row in gateway.usage(key_id=key_id, group_by="status") if row["requests"]]

    (row,) = wait_for(lambda: (rows := ledger()) and rows[0]["status"] == "error" and rows, timeout=60)
    wait_for(lambda: [r["group"]["status"] for r in analytics()] == ["error"], timeout=60)
    (served,) = analytics()
    assert len(ledger()) == 1 and served["requests"] == 1
    return row, served


def test_a_call_the_bus_outage_cut_is_charged_once_with_the_status_the_client_saw(
        gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    """The upstream answers while NATS is away; the client got 503 meanwhile. When the bus
    is back the router's usage event (status ok) and the ingress's correction both arrive:
    one row in each store, status error, the upstream's tokens."""
    # the bus away longer than the heartbeat timeout (2 s): the silence is the bus's, not the router's
    url = gateway.extra_ingress(JETGATE_INGRESS__BUS_OUTAGE_WAIT_S="2.5")
    key, key_id = gateway.create_key("bus-cut")
    tag = f"bus-cut-{uuid.uuid4().hex[:8]}"
    messages = [{"role": "user", "content": f"{tag} call 0"}]
    nats = gateway.supervisor.children[NATS_CHILD]
    answered = fake_openai.slow_answered

    def call() -> httpx.Response:
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=60) as http:
            return http.post("/v1/chat/completions", json={"model": "slow", "messages": messages})

    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(call)
        wait_for(lambda: reached_upstream(fake_openai, tag), timeout=30, every=0.01)
        nats.kill()  # stays down: nobody runs the supervisor's loop yet
        response = future.result()
    assert response.status_code == 503 and response.json()["error"]["code"] == "bus_unavailable"
    wait_for(lambda: fake_openai.slow_answered > answered, timeout=30, every=0.05)  # the upstream did the work
    _restart_nats(gateway)

    row, served = _one_row_as_seen(gateway, key_id, response.headers["x-request-id"])
    tokens = (p.count_prompt_tokens(messages), p.COMPLETION_TOKENS)  # what the upstream reported
    assert (row["prompt_tokens"], row["completion_tokens"]) == tokens
    assert (served["prompt_tokens"], served["completion_tokens"]) == tokens and row["cost"] > 0


def test_a_stream_cut_by_a_bus_outage_is_charged_once_with_the_status_the_client_saw(
        gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    """A stream under way when NATS goes away: the client's stream ends in an error event
    (the router is silent), the router streams on to the upstream's end. Both usage events
    carry the call's id (one is kept) and the correction makes the row say error."""
    key, key_id = gateway.create_key("bus-cut-stream")
    nats = gateway.supervisor.children[NATS_CHILD]
    events: list[Any] = []
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=60) as http, \
            http.stream("POST", "/v1/chat/completions", json={
                "model": "slow-stream", "stream": True, "messages": [{"role": "user", "content": "go"}]}) as stream:
        request_id = stream.headers["x-request-id"]
        for line in stream.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            events.append(json.loads(line[len("data: "):]))
            if len(events) == 3:
                nats.kill()
    assert len(events) > 3 and events[-1]["error"]["code"] == "bus_unavailable", events[-1]  # the outage, not the router
    _restart_nats(gateway)
    row, served = _one_row_as_seen(gateway, key_id, request_id)
    assert row["completion_tokens"] > 0 and served["completion_tokens"] == row["completion_tokens"]
