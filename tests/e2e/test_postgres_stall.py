"""Postgres frozen (SIGSTOP of the postmaster and every backend) under a running gateway:
keys seen before keep working from the cache, unknown keys get 503 `key_store_unavailable`
(never 401, never a hang), `/ready` and the admin API answer and name Postgres, and after
SIGCONT everything recovers by itself; what reached the upstream is charged once, as seen."""
from __future__ import annotations

import time
import uuid

import httpx

from jetgate.embedded.children import POSTGRES_CHILD
from tests.e2e.gateway import Gateway, wait_for
from tests.e2e.outcomes import Outcome, assert_charged_as_seen, chat
from tests.fakes.openai_upstream import FakeOpenAI

KEY_CACHE_TTL_S = 1.0  # this test's ingress: its cached keys expire during the stall
ANSWER_WITHIN_S = 3.0  # the bound for an unknown key's 503 (the key store timeout is 2.5 s by default)


def test_postgres_frozen_then_thawed(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    url = gateway.extra_ingress(JETGATE_INGRESS__KEY_CACHE_TTL_S=str(KEY_CACHE_TTL_S))
    key, key_id = gateway.create_key("pg-frozen")
    tag = f"pg-stall-{uuid.uuid4().hex[:8]}"
    outcomes: list[Outcome] = [chat(gateway, key, tag, 0, url=url)]  # the ingress has verified (cached) it
    assert outcomes[0].status == 200
    with gateway.paused(POSTGRES_CHILD), httpx.Client(base_url=url, timeout=30) as http:
        time.sleep(KEY_CACHE_TTL_S)  # the cached entry expires: only stale-while-error can serve it now
        for _ in range(5):
            outcomes.append(chat(gateway, key, tag, len(outcomes), url=url))
        assert [o.status for o in outcomes] == [200] * 6

        began = time.monotonic()
        unknown = http.post("/v1/chat/completions", headers={"authorization": "Bearer jg-never-issued-000000000000"},
                            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        assert time.monotonic() - began < ANSWER_WITHIN_S
        assert unknown.status_code == 503 and unknown.json()["error"]["code"] == "key_store_unavailable"

        ready = http.get("/ready")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["nats"] == "ok" and checks["postgres"].startswith("down")

        admin = http.get("/admin/keys", headers={"authorization": f"Bearer {gateway.master_key}"})
        assert admin.status_code == 503 and admin.json()["error"]["code"] == "key_store_unavailable"

    # thawed: everything comes back without a restart
    with httpx.Client(base_url=url, timeout=30) as http:
        wait_for(lambda: http.get("/ready").status_code == 200, timeout=30)
    fresh, _ = gateway.create_key("pg-after-thaw")
    assert chat(gateway, fresh, f"{tag}-fresh", 0, url=url).status == 200
    outcomes.append(chat(gateway, key, tag, len(outcomes), url=url))
    assert outcomes[-1].status == 200
    assert_charged_as_seen(gateway, fake_openai, key_id, tag, outcomes)  # the ledger writes were retried
