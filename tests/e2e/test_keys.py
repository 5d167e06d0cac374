"""Keys: revocation reaches every ingress replica; the CLI makes working keys."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import openai
import pytest

from shared.keys import hash_key
from tests.e2e.conftest import pg_rows
from tests.e2e.gateway import Gateway

MESSAGES = [{"role": "user", "content": "hello"}]


def test_revoked_key_is_refused_by_another_replica_within_a_second(gateway: Gateway) -> None:
    second = gateway.extra_ingress()
    key, key_id = gateway.create_key("to-revoke")
    with httpx.Client(headers={"authorization": f"Bearer {key}"}, timeout=10) as http:
        body = {"model": "gpt-4o-mini", "messages": MESSAGES}
        assert http.post(second + "/v1/chat/completions", json=body).status_code == 200  # now cached there
        with gateway.admin() as admin:
            assert admin.delete(f"/admin/keys/{key_id}").status_code == 200
        revoked_at = time.monotonic()
        while True:
            status = http.post(second + "/v1/chat/completions", json=body).status_code
            if status == 401:
                break
            assert time.monotonic() - revoked_at < 1.0, "second replica still accepts the revoked key"
            time.sleep(0.02)
        assert http.post(gateway.url + "/v1/chat/completions", json=body).status_code == 401


def test_key_hash_only_and_admin_only(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("hashed")
    stored = pg_rows(gateway, "SELECT key_hash, prefix FROM api_keys WHERE id = $1", key_id)[0]
    assert stored["key_hash"] == hash_key(key) and stored["prefix"] == key[:10]  # the hash, never the key
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}) as http:
        response = http.get("/admin/keys")
        assert response.status_code == 403 and response.json()["error"]["code"] == "admin_required"
    with gateway.admin() as admin:
        ids: set[str] = set()
        after: dict[str, str] = {}
        while True:  # every page, as a client pages through them
            response = admin.get("/admin/keys", params={"limit": 2, **after})
            page = response.json()
            assert key not in response.text and len(page["data"]) <= 2
            ids |= {k["id"] for k in page["data"]}
            if not page["has_more"]:
                break
            after = {"after": page["last_id"]}
        assert key_id in ids


def test_cli_creates_a_key_the_gateway_accepts(gateway: Gateway) -> None:
    env = {**os.environ, "JETGATE_DATABASE_URL": gateway.env["JETGATE_DATABASE_URL"],
           "JETGATE_NATS_URL": gateway.env["JETGATE_NATS_URL"]}
    result = subprocess.run([sys.executable, "-m", "jetgate.cli", "keys", "create", "--name", "cli-key",
                             "--models", "gpt-4o"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_ready_and_metrics(gateway: Gateway) -> None:
    with httpx.Client(base_url=gateway.url) as http:
        ready = http.get("/ready")
        assert ready.status_code == 200 and ready.json()["checks"] == {"nats": "ok", "postgres": "ok"}
        http.get("/v1/models")  # unauthenticated: a 401 to count
        metrics = http.get("/metrics").text
        assert 'jetgate_http_requests_total{route="/v1/models",status="401"}' in metrics
