"""Calls made in a fault test, and the count every such test ends with: the calls that
reached the upstream are the ones charged, each once, with the status the client saw."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tests.e2e.conftest import pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.openai_upstream import FakeOpenAI

LEDGER_STATUS = {200: "ok"}  # what the router records for the status the client saw


@dataclass(frozen=True)
class Outcome:
    n: int
    status: int
    code: str | None
    request_id: str | None
    seconds: float


def chat(gateway: Gateway, key: str, tag: str, n: int, timeout: float = 60.0, url: str | None = None) -> Outcome:
    began = time.monotonic()
    with gateway.client(key, url=url, timeout=timeout) as http:
        response = http.post("/v1/chat/completions", json={
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"{tag} call {n}"}]})
    code = None if response.status_code == 200 else response.json()["error"]["code"]
    return Outcome(n, response.status_code, code, response.headers.get("x-request-id"), time.monotonic() - began)


def reached_upstream(fake: FakeOpenAI, tag: str) -> Counter[int]:
    """How often each call of this test reached the upstream, by its number."""
    seen: Counter[int] = Counter()
    prefix = f"{tag} call "
    for request in fake.requests:
        body: Any = request.json
        if not isinstance(body, dict):
            continue
        for message in body.get("messages", []):
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str) and content.startswith(prefix):
                seen[int(content[len(prefix):])] += 1
    return seen


def assert_charged_as_seen(gateway: Gateway, fake: FakeOpenAI, key_id: str, tag: str,
                           outcomes: list[Outcome]) -> None:
    """Every call that reached the upstream was answered 200 and is in the spend ledger and
    ClickHouse exactly once, with status ok; nothing else is charged."""
    reached = reached_upstream(fake, tag)
    assert all(count == 1 for count in reached.values()), reached  # never sent upstream twice
    answered = {o.n for o in outcomes if o.status == 200}
    assert set(reached) == answered, (sorted(set(reached) - answered), sorted(answered - set(reached)))
    expected = {o.request_id for o in outcomes if o.status == 200}
    rows = wait_for(lambda: (r := pg_rows(gateway, "SELECT request_id, status FROM spend_ledger WHERE key_id = $1",
                                          key_id)) and len(r) >= len(expected) and r, timeout=60)
    assert sorted(r["request_id"] for r in rows) == sorted(expected)  # each once, nothing more
    assert {r["status"] for r in rows} == {LEDGER_STATUS[200]}
    usage = wait_for(lambda: (u := gateway.usage(key_id=key_id, group_by="key_id")) and
                     u[0]["requests"] == len(expected) and u, timeout=60)
    assert usage[0]["requests"] == len(expected)
