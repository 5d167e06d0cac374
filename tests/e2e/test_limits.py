"""Rate limits and budgets across ingress replicas (`jetgate run ingress` processes) on the
e2e gateway's real NATS KV and Postgres: exact under bursts, settled with real usage,
headers on plain and streamed answers, one budget.warning per period and level, and all of
it kept while Postgres is frozen."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from jetgate.embedded.children import POSTGRES_CHILD
from tests.e2e.conftest import PRICE_IN, PRICE_OUT, pg_rows
from tests.e2e.gateway import Gateway, wait_for

MODEL = "gpt-4o-mini"
# 12 words the fake counts as 12 prompt tokens, which the gateway's estimator also makes 12
# (3 framing + 23 characters / 4 + 3): a call's real cost is exactly its reservation
PROMPT = " ".join(["a"] * 12)
MAX_TOKENS = 10  # the fake answers 10 completion tokens
WORST = (PRICE_IN * 12 + PRICE_OUT * MAX_TOKENS) / 1_000_000
BODY: dict[str, Any] = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": PROMPT}]}


@pytest.fixture(scope="module")
def replicas(gateway: Gateway) -> Iterator[list[str]]:
    """Four ingress replicas of their own. A KV timeout well past the default: on two busy cores
    a compare-and-set can take over 0.5 s, and rpm then fails open by design (tested in
    tests/services/ingress/limits/test_admission.py), which is not what these tests hold."""
    yield [gateway.extra_ingress(JETGATE_LIMITS__KV_TIMEOUT_S="5") for _ in range(4)]


def _tenant(gateway: Gateway, **limits: dict[str, Any]) -> tuple[str, str, str]:
    """An org, team, user and key of this test's own, each with the limits given by level
    (`org={...}`, `team=`, `user=`, `key=`); returns the key, its id and the org id."""
    suffix = uuid.uuid4().hex[:10]
    org, team, user = f"org-{suffix}", f"team-{suffix}", f"user-{suffix}"
    with gateway.admin() as admin:
        for path, body in (("/admin/orgs", {"id": org, "name": org, **limits.get("org", {})}),
                           ("/admin/teams", {"id": team, "org_id": org, "name": team, **limits.get("team", {})}),
                           ("/admin/users", {"id": user, "org_id": org, "team_id": team, "name": user,
                                             **limits.get("user", {})})):
            made = admin.post(path, json=body)
            assert made.status_code == 201, made.text
        made = admin.post("/admin/keys", json={"name": f"key-{suffix}", "org_id": org, "user_id": user,
                                               **limits.get("key", {})})
        assert made.status_code in (200, 201), made.text
        record = made.json()
    return record["key"], record["record"]["id"], org


async def _burst(urls: list[str], key: str, count: int, body: dict[str, Any] | None = None) -> list[httpx.Response]:
    """`count` requests at once, spread over the replicas."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    clients = [httpx.AsyncClient(base_url=url, timeout=120, limits=limits,
                                 headers={"authorization": f"Bearer {key}"}) for url in urls]
    try:
        return list(await asyncio.gather(*(clients[i % len(clients)].post("/v1/chat/completions", json=body or BODY)
                                           for i in range(count))))
    finally:
        for client in clients:
            await client.aclose()


def _spend(gateway: Gateway, key_id: str) -> tuple[int, Decimal]:
    rows = pg_rows(gateway, "SELECT count(*) AS n, coalesce(sum(cost), 0) AS cost FROM spend_ledger WHERE key_id = $1",
                   key_id)
    return int(rows[0]["n"]), Decimal(rows[0]["cost"])


def test_a_budget_holds_across_four_replicas(gateway: Gateway, replicas: list[str]) -> None:
    budget = WORST * 100
    key, key_id, _ = _tenant(gateway, team={"max_budget": str(budget), "budget_duration": "1d"})
    responses = asyncio.run(_burst(replicas, key, 400))
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(served) + len(refused) == 400, {r.status_code for r in responses}
    assert 0 < len(served) <= 100
    assert refused and all(r.json()["error"]["code"] == "insufficient_quota" for r in refused)
    assert all(r.json()["error"]["type"] == "insufficient_quota" and r.headers.get("retry-after") for r in refused)
    wait_for(lambda: _spend(gateway, key_id)[0] >= len(served), timeout=60)
    rows, spent = _spend(gateway, key_id)
    assert rows == len(served) and spent <= budget


def test_rpm_holds_across_four_replicas(gateway: Gateway, replicas: list[str]) -> None:
    key, _, _ = _tenant(gateway, key={"rpm_limit": 100})
    responses = asyncio.run(_burst(replicas, key, 500))
    passed = sum(r.status_code == 200 for r in responses)
    refused = [r for r in responses if r.status_code == 429]
    assert passed + len(refused) == 500
    assert passed == 100  # the limit holds exactly: never over, and a burst spread over the replicas uses it all
    error = refused[0].json()["error"]
    assert error["code"] == "rate_limit_exceeded" and "requests per min" in error["message"]
    assert 1 <= int(refused[0].headers["retry-after"]) <= 60
    assert refused[0].headers["x-ratelimit-limit-requests"] == "100"
    assert refused[0].headers["x-ratelimit-remaining-requests"] == "0"


def _remaining_tokens(response: httpx.Response) -> int:
    return int(response.headers["x-ratelimit-remaining-tokens"])


def test_a_stream_gives_back_what_it_did_not_use(gateway: Gateway) -> None:
    limit = 100_000
    key, _, _ = _tenant(gateway, user={"tpm_limit": limit})
    long_word = "x" * 400  # estimated 3 + 100 + 3 tokens; the fake counts one word
    body = {"model": MODEL, "messages": [{"role": "user", "content": long_word}], "stream": True,
            "stream_options": {"include_usage": True}}
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=30) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as stream:
            assert stream.status_code == 200
            first = _remaining_tokens(stream)
            assert stream.headers["x-ratelimit-limit-tokens"] == str(limit)
            lines = [line for line in stream.iter_lines() if line.startswith("data: {")]
        assert '"usage"' in lines[-1]
        assert first == limit - 106
        with http.stream("POST", "/v1/chat/completions", json=body) as stream:
            second = _remaining_tokens(stream)
            list(stream.iter_lines())
    # the first stream used 1 + 10 tokens: the other 95 of its estimate came back before the
    # second took its own 106
    assert second == first - 11


def test_headers_on_plain_and_streamed_answers(gateway: Gateway) -> None:
    key, _, _ = _tenant(gateway, org={"rpm_limit": 50, "tpm_limit": 10_000}, key={"rpm_limit": 20})
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=30) as http:
        plain = http.post("/v1/chat/completions", json=BODY)
        with http.stream("POST", "/v1/chat/completions", json={**BODY, "stream": True}) as streamed:
            stream_headers = streamed.headers
            list(streamed.iter_lines())
        embedded = http.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "hello"})
    for response_headers, remaining in ((plain.headers, 19), (stream_headers, 18)):
        assert response_headers["x-ratelimit-limit-requests"] == "20"  # the key's, tighter than the org's
        assert response_headers["x-ratelimit-remaining-requests"] == str(remaining)
        assert response_headers["x-ratelimit-reset-requests"].endswith("s")
        assert response_headers["x-ratelimit-limit-tokens"] == "10000"
    assert int(stream_headers["x-ratelimit-remaining-tokens"]) < int(plain.headers["x-ratelimit-remaining-tokens"])
    assert embedded.status_code == 200 and embedded.headers["x-ratelimit-remaining-requests"] == "17"


def test_budget_warning_once_per_period_and_level(gateway: Gateway, replicas: list[str]) -> None:
    key, _, org = _tenant(gateway, org={"max_budget": str(WORST * 20), "budget_duration": "1mo"},
                          key={"max_budget": str(WORST * 100)})
    # one after another over the replicas: allowances leased and not yet used at one replica
    # cannot then refuse another's request near the end of the budget (a burst may)
    responses = []
    for i in range(17):
        with gateway.client(key, url=replicas[i % 4], timeout=30) as http:
            responses.append(http.post("/v1/chat/completions", json=BODY))
    assert [r.status_code for r in responses] == [200] * 17
    warned = [r for r in responses if "x-jetgate-budget-warning" in r.headers]
    assert warned and all(r.headers["x-jetgate-budget-warning"] == f"org:{org}" for r in warned)
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=30) as http:
        assert http.post("/v1/chat/completions", json=BODY).headers["x-jetgate-budget-warning"] == f"org:{org}"

    def warnings() -> list[Any]:
        return pg_rows(gateway, "SELECT data FROM audit_log WHERE type = 'budget.warning' AND org_id = $1", org)

    wait_for(warnings, timeout=30)
    time.sleep(1.0)  # a second one would be in by now
    rows = warnings()
    assert len(rows) == 1
    data = rows[0]["data"]
    data = json.loads(data) if isinstance(data, str) else data
    assert data["level"] == "org" and data["level_id"] == org and data["budget_duration"] == "1mo"


def test_limits_and_budgets_hold_while_postgres_is_frozen(gateway: Gateway, replicas: list[str]) -> None:
    rpm_key, _, _ = _tenant(gateway, key={"rpm_limit": 4})
    budget_key, _, _ = _tenant(gateway, org={"max_budget": str(WORST * 3)})
    url = replicas[1]

    def post(http: httpx.Client, key: str) -> httpx.Response:
        return http.post("/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {key}"})

    with httpx.Client(base_url=url, timeout=30) as http:
        assert post(http, rpm_key).status_code == 200 and post(http, budget_key).status_code == 200  # cached
        with gateway.paused(POSTGRES_CHILD):
            rpm = [post(http, rpm_key).status_code for _ in range(4)]
            budget = [post(http, budget_key) for _ in range(3)]
        assert rpm == [200, 200, 200, 429]
        assert [r.status_code for r in budget] == [200, 200, 429]
        assert budget[-1].json()["error"]["code"] == "insufficient_quota"
        wait_for(lambda: http.get("/ready").status_code == 200, timeout=30)
    fresh, _, _ = _tenant(gateway, key={"rpm_limit": 2})
    with httpx.Client(base_url=url, timeout=30) as http:
        assert [post(http, fresh).status_code for _ in range(3)] == [200, 200, 429]


def test_messages_and_responses_pass_the_same_admission(gateway: Gateway) -> None:
    key, _, _ = _tenant(gateway, key={"rpm_limit": 2})
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=30) as http:
        message = http.post("/v1/messages", json={"model": MODEL, "max_tokens": 16,
                                                  "messages": [{"role": "user", "content": "hi"}]})
        response = http.post("/v1/responses", json={"model": MODEL, "input": "hi"})
        refused = http.post("/v1/messages", json={"model": MODEL, "max_tokens": 16,
                                                  "messages": [{"role": "user", "content": "hi"}]})
    assert message.status_code == 200 and message.headers["x-ratelimit-remaining-requests"] == "1"
    assert response.status_code == 200 and response.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"  # Anthropic's shape
    assert refused.headers["retry-after"] and refused.headers["x-ratelimit-remaining-requests"] == "0"


def test_a_budget_set_later_counts_what_was_spent_before(gateway: Gateway) -> None:
    key, key_id, _ = _tenant(gateway)
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=30) as http:
        assert [http.post("/v1/chat/completions", json=BODY).status_code for _ in range(3)] == [200] * 3
        wait_for(lambda: _spend(gateway, key_id)[0] == 3, timeout=60)
        with gateway.admin() as admin:
            changed = admin.patch(f"/admin/keys/{key_id}", json={"max_budget": str(WORST * 4)})
            assert changed.status_code == 200, changed.text
        # the three calls spent three worst cases already: room for one more
        statuses = [http.post("/v1/chat/completions", json=BODY) for _ in range(2)]
    assert [r.status_code for r in statuses] == [200, 429]
    assert statuses[1].json()["error"]["code"] == "insufficient_quota"
