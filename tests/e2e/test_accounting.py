"""Every request is charged exactly once: ClickHouse usage, Postgres spend ledger, audit log."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import openai

from services.router.providers.anthropic import payloads
from tests.e2e.conftest import PRICE_CACHE_WRITE, PRICE_CACHED, PRICE_IN, PRICE_OUT, pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.openai_upstream import FakeOpenAI

MESSAGES = [{"role": "user", "content": "Count me exactly once"}]


def ledger(gateway: Gateway, key_id: str) -> list[Any]:
    return pg_rows(gateway, "SELECT * FROM spend_ledger WHERE key_id = $1", key_id)


def usage_row(gateway: Gateway, key_id: str) -> dict[str, Any] | None:
    rows = gateway.usage(key_id=key_id, group_by="key_id")
    return rows[0] if rows else None


def test_one_request_leaves_one_row_everywhere(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("one-request")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    request_id = raw.headers["x-request-id"]
    usage = completion.usage
    assert usage is not None
    expected = (PRICE_IN * usage.prompt_tokens + PRICE_OUT * usage.completion_tokens) / Decimal(1_000_000)

    rows = wait_for(lambda: ledger(gateway, key_id))
    assert len(rows) == 1
    assert rows[0]["request_id"] == request_id
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert rows[0]["cost"] == expected
    spend = pg_rows(gateway, "SELECT spend FROM api_keys WHERE id = $1", key_id)[0]["spend"]
    assert spend == expected

    row = wait_for(lambda: usage_row(gateway, key_id))
    assert row["requests"] == 1 and Decimal(row["cost"]) == expected

    def audit() -> list[str]:
        rows = pg_rows(gateway, "SELECT type FROM audit_log WHERE request_id = $1", request_id)
        return sorted(r["type"] for r in rows) if len(rows) >= 2 else []

    assert wait_for(audit) == ["request.completed", "request.received"]


def test_prompt_cache_reads_and_writes_are_stored_and_charged_at_their_prices(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("cache-priced")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    completion = client.chat.completions.create(model="claude-cache-priced", messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True})
    usage = [chunk.usage for chunk in completion if chunk.usage is not None][-1]
    details = usage.prompt_tokens_details
    assert details is not None and details.cached_tokens == payloads.CACHE_READ_TOKENS
    read, written = payloads.CACHE_READ_TOKENS, payloads.CACHE_CREATION_TOKENS
    fresh = usage.prompt_tokens - read - written
    assert fresh == len(MESSAGES[0]["content"].split())  # the fake counts words
    expected = (PRICE_IN * fresh + PRICE_CACHED * read + PRICE_CACHE_WRITE * written
                + PRICE_OUT * usage.completion_tokens) / Decimal(1_000_000)
    assert expected < (PRICE_IN * usage.prompt_tokens + PRICE_OUT * usage.completion_tokens) / Decimal(1_000_000)

    rows = wait_for(lambda: ledger(gateway, key_id))
    assert len(rows) == 1 and rows[0]["cost"] == expected
    assert (rows[0]["prompt_tokens"], rows[0]["cached_tokens"], rows[0]["cache_write_tokens"],
            rows[0]["reasoning_tokens"]) == (usage.prompt_tokens, read, written, 0)
    assert pg_rows(gateway, "SELECT spend FROM api_keys WHERE id = $1", key_id)[0]["spend"] == expected
    row = wait_for(lambda: usage_row(gateway, key_id))  # ClickHouse, through the usage API
    assert (row["requests"], row["prompt_tokens"]) == (1, usage.prompt_tokens) and Decimal(row["cost"]) == expected


def test_stream_without_upstream_usage_is_still_charged(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("no-usage-stream")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    chunks = list(client.chat.completions.create(model="stream-no-usage", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    rows = wait_for(lambda: ledger(gateway, key_id))
    assert len(rows) == 1 and rows[0]["completion_tokens"] > 0 and rows[0]["cost"] > 0


def test_client_disconnect_mid_stream_is_charged(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    key, key_id = gateway.create_key("disconnect")
    aborted_before = fake_openai.streams_aborted
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=30) as http:
        with http.stream("POST", "/v1/chat/completions",
                         json={"model": "slow-stream", "messages": MESSAGES, "stream": True}) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            received = [line for _, line in zip(range(10), lines, strict=False) if line.startswith("data: ")]
            assert received
    rows = wait_for(lambda: ledger(gateway, key_id))
    assert len(rows) == 1
    assert rows[0]["status"] == "cancelled"
    assert rows[0]["completion_tokens"] > 0
    wait_for(lambda: fake_openai.streams_aborted > aborted_before, timeout=10)  # the upstream was stopped too


def test_exactly_once_when_accounting_is_killed_mid_burst(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("burst")
    total = 300
    # one pooled client for every thread (it is thread-safe): the burst measures the gateway,
    # not a TCP handshake per request
    http = httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=60,
                        limits=httpx.Limits(max_connections=16))

    def call(i: int) -> int:
        return http.post("/v1/chat/completions", json={
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"burst request {i}"}]}).status_code

    with http, ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(call, i) for i in range(total)]
        wait_for(lambda: sum(f.done() for f in futures) >= total // 4, timeout=120, every=0.02)
        gateway.kill("accounting")  # SIGKILL: no flush, no ack of the batch in hand
        wait_for(lambda: sum(f.done() for f in futures) >= total // 2, timeout=120, every=0.05)
        gateway.start("accounting")
        statuses = [f.result() for f in futures]
    assert statuses == [200] * total  # accounting down never touches the request path

    row = wait_for(lambda: (r := usage_row(gateway, key_id)) and r["requests"] == total and r, timeout=120)
    rows = wait_for(lambda: (r := ledger(gateway, key_id)) and len(r) == total and r, timeout=60)
    assert len({r["event_id"] for r in rows}) == total
    assert len({r["request_id"] for r in rows}) == total
    ledger_sum = sum((r["cost"] for r in rows), Decimal(0))
    spend = pg_rows(gateway, "SELECT spend FROM api_keys WHERE id = $1", key_id)[0]["spend"]
    assert spend == ledger_sum
    assert Decimal(row["cost"]) == ledger_sum
    time.sleep(2)  # anything redelivered late must still not double-count
    assert usage_row(gateway, key_id)["requests"] == total  # type: ignore[index]
    assert len(ledger(gateway, key_id)) == total


def test_embeddings_are_charged(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("embeddings")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    result = client.embeddings.create(model="text-embedding-3-small", input="charge my embedding")
    rows = wait_for(lambda: ledger(gateway, key_id))
    assert rows[0]["prompt_tokens"] == result.usage.prompt_tokens


def test_refusals_leave_denied_audit_rows(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("refused", models=["gpt-4o"])
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}) as http:
        forbidden = http.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES})
        blocked = http.post("/v1/chat/completions", json={
            "model": "gpt-4o", "messages": [{"role": "user", "content": "top secret plans"}]})
    assert (forbidden.status_code, blocked.status_code) == (403, 400)

    def denied() -> list[Any]:
        rows = pg_rows(gateway, "SELECT request_id, data FROM audit_log WHERE key_id = $1 AND type = 'request.denied'",
                       key_id)
        return rows if len(rows) == 2 else []

    rows = {r["request_id"]: r for r in wait_for(denied)}
    assert '"status_code": 403' in rows[forbidden.headers["x-request-id"]]["data"]
    assert "no-top-secret" in rows[blocked.headers["x-request-id"]]["data"]
    assert "top secret plans" not in rows[blocked.headers["x-request-id"]]["data"]  # never the content
    assert ledger(gateway, key_id) == []  # nothing reached the router, nothing is charged
