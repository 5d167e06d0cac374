"""A non-streamed call whose client goes away: the router drops the upstream call and
charges what it cost (the prompt, counted), once."""
from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.conftest import charged, pg_rows
from tests.e2e.gateway import Gateway
from tests.fakes.openai_upstream import FakeOpenAI


def test_a_client_that_leaves_a_slow_call_cancels_it_and_it_is_charged_once(gateway: Gateway,
                                                                            fake_openai: FakeOpenAI) -> None:
    key, key_id = gateway.create_key("abandoned")
    tag = f"abandoned-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"},
                      timeout=httpx.Timeout(30, read=2)) as http, pytest.raises(httpx.ReadTimeout):
        # the upstream takes 30 s; the client gives up after 2 s and closes the connection
        http.post("/v1/chat/completions", json={"model": "hang", "messages": [{"role": "user", "content": tag}]})
    reached = [r for r in fake_openai.requests if r.json and tag in str(r.json.get("messages"))]
    assert len(reached) == 1
    (row,) = charged(gateway, key_id, 1)  # long before the upstream would have answered
    assert row["status"] == "cancelled"
    ((cost, prompt),) = [(r["cost"], r["prompt_tokens"]) for r in pg_rows(
        gateway, "SELECT cost, prompt_tokens FROM spend_ledger WHERE key_id = $1", key_id)]
    assert prompt > 0 and cost > 0  # the prompt, as counted by the gateway
