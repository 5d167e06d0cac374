"""Tenancy on the whole gateway: the CLI mirrors the admin API, admin actions land in the
audit log without secrets, usage carries the user and an org admin sees its own org's usage
and spend only."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import pg_rows
from tests.e2e.gateway import Gateway, wait_for

MESSAGES = [{"role": "user", "content": "hello"}]


def _slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _cli(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JETGATE_DATABASE_URL": gateway.env["JETGATE_DATABASE_URL"],
           "JETGATE_NATS_URL": gateway.env["JETGATE_NATS_URL"]}
    return subprocess.run([sys.executable, "-m", "jetgate.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _eventually_status(client: openai.OpenAI, model: str, error: type[Exception] | None, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.chat.completions.create(model=model, messages=MESSAGES)
            outcome: type[Exception] | None = None
        except (openai.PermissionDeniedError, openai.AuthenticationError) as exc:
            outcome = type(exc)
        if outcome is error:
            return
        assert time.monotonic() < deadline, f"still {outcome} for {model}"
        time.sleep(0.05)


def test_cli_mirrors_the_admin_api(gateway: Gateway) -> None:
    org, team, user = _slug("cli-org"), _slug("cli-team"), _slug("cli-user")
    assert _ok(_cli(gateway, "orgs", "create", "--id", org, "--name", "CLI Corp", "--rpm-limit", "500")) == org
    refused = _cli(gateway, "orgs", "create", "--id", "a.b", "--name", "bad")
    assert refused.returncode == 2 and "id" in refused.stderr
    assert _ok(_cli(gateway, "teams", "create", "--org", org, "--id", team, "--name", "Eng",
                    "--models", "gpt-4o,gpt-4o-mini")) == team
    assert _ok(_cli(gateway, "users", "create", "--org", org, "--team", team, "--id", user, "--name", "Ada",
                    "--role", "admin", "--max-budget", "2.5", "--budget-duration", "1d")) == user
    key = _ok(_cli(gateway, "keys", "create", "--name", "ada-cli", "--org", org, "--user", user))
    assert org in _ok(_cli(gateway, "orgs", "list")) and user in _ok(_cli(gateway, "users", "list", "--org", org))
    assert team in _ok(_cli(gateway, "teams", "list", "--org", org))

    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices
    with pytest.raises(openai.PermissionDeniedError):  # not in the team's allowlist
        client.chat.completions.create(model="claude-sonnet", messages=MESSAGES)

    _ok(_cli(gateway, "orgs", "update", org, "--models", "gpt-4o-mini"))  # reaches the running ingress
    _eventually_status(client, "gpt-4o", openai.PermissionDeniedError)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices

    with gateway.admin() as admin:
        shown = admin.get(f"/admin/users/{user}").json()
        assert shown["role"] == "admin" and Decimal(shown["max_budget"]) == Decimal("2.5")
        assert admin.get(f"/admin/orgs/{org}").json()["models"] == ["gpt-4o-mini"]

    made = _cli(gateway, "keys", "create", "--name", "svc-cli", "--org", org, "--team", team, "--rpm-limit", "5")
    service_key, service_id = _ok(made), re.findall(r"id: (key_\w+)", made.stderr)[0]
    assert service_id in _ok(_cli(gateway, "keys", "list", "--org", org))
    _ok(_cli(gateway, "keys", "update", service_id, "--models", "gpt-4o", "--scopes", "chat,embeddings"))
    rotated = _ok(_cli(gateway, "keys", "rotate", service_id, "--grace", "0"))
    service = openai.OpenAI(base_url=gateway.url + "/v1", api_key=rotated, max_retries=0)
    _eventually_status(openai.OpenAI(base_url=gateway.url + "/v1", api_key=service_key, max_retries=0), "gpt-4o-mini",
                       openai.AuthenticationError)  # the old secret, rotated out
    with pytest.raises(openai.PermissionDeniedError):  # the key allows gpt-4o, the org gpt-4o-mini: nothing left
        service.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with gateway.admin() as admin:
        shown = admin.get(f"/admin/keys/{service_id}").json()
        assert (shown["models"], shown["rpm_limit"], shown["team_id"]) == (["gpt-4o"], 5, team)

    assert "deleted" in _ok(_cli(gateway, "users", "delete", user))
    _eventually_status(client, "gpt-4o-mini", openai.AuthenticationError)


def test_admin_actions_are_audited_without_secrets(gateway: Gateway) -> None:
    org = _slug("audited")
    with gateway.admin() as admin:
        assert admin.post("/admin/orgs", json={"id": org, "name": "Audited"}).status_code == 201
        made = admin.post("/admin/keys", json={"name": "audited-key", "org_id": org, "role": "admin"}).json()
        key, key_id = made["key"], made["record"]["id"]
        rotated = admin.post(f"/admin/keys/{key_id}/rotate", json={"grace_period_s": 0}).json()["key"]
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {rotated}"}, timeout=30) as org_admin:
        assert org_admin.patch(f"/admin/keys/{key_id}", json={"rpm_limit": 9}).status_code == 200

    def actions() -> list[Any]:
        rows = pg_rows(gateway, "SELECT * FROM audit_log WHERE type = 'admin.action' AND org_id = $1 "
                                "ORDER BY event_id", org)
        return rows if len(rows) >= 4 else []

    rows = wait_for(actions, timeout=60)
    found = [(json.loads(r["data"])["action"], json.loads(r["data"])["object"]) for r in rows]
    assert found == [("created", "org"), ("created", "key"), ("rotated", "key"), ("updated", "key")]
    created_key = json.loads(rows[1]["data"])
    assert created_key["actor_key_id"] == "master" and created_key["object_id"] == key_id
    assert created_key["after"]["role"] == "admin" and created_key["before"] is None
    assert created_key["address"] == "127.0.0.1"
    update = json.loads(rows[3]["data"])
    assert update["actor_key_id"] == key_id == rows[3]["key_id"]  # the org admin itself, by its key id
    assert (update["before"]["rpm_limit"], update["after"]["rpm_limit"]) == (None, 9)
    every = " ".join(str(dict(r)) for r in rows)
    for secret in (key, rotated, key[10:], rotated[10:]):
        assert secret not in every
    assert "key_hash" not in every


def test_usage_carries_the_user_and_an_org_admin_sees_its_own_only(gateway: Gateway) -> None:
    org, other = _slug("usage-org"), _slug("usage-other")
    with gateway.admin() as admin:
        for org_id in (org, other):
            assert admin.post("/admin/orgs", json={"id": org_id, "name": org_id}).status_code == 201
        user = admin.post("/admin/users", json={"org_id": org, "name": "Bob", "max_budget": 10,
                                                "budget_duration": "1mo"}).json()["id"]
        key = admin.post("/admin/keys", json={"name": "bob", "org_id": org, "user_id": user}).json()["key"]
        other_key, other_id = gateway.create_key("usage-other", org_id=other)
        org_admin = admin.post("/admin/keys", json={"name": "boss", "org_id": org, "role": "admin"}).json()["key"]
    for caller in (key, other_key):
        openai.OpenAI(base_url=gateway.url + "/v1", api_key=caller, max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES)

    rows = wait_for(lambda: pg_rows(gateway, "SELECT * FROM spend_ledger WHERE user_id = $1", user), timeout=60)
    assert len(rows) == 1 and rows[0]["org_id"] == org and rows[0]["cost"] > 0
    wait_for(lambda: pg_rows(gateway, "SELECT * FROM spend_ledger WHERE key_id = $1", other_id), timeout=60)

    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {org_admin}"}, timeout=30) as http:
        def own_usage() -> list[dict[str, Any]]:
            response = http.get("/admin/usage", params={"group_by": "org_id"})
            assert response.status_code == 200, response.text
            return response.json()["rows"]  # type: ignore[no-any-return]

        usage = wait_for(own_usage, timeout=60)
        assert {row["group"]["org_id"] for row in usage} == {org}
        assert http.get("/admin/usage", params={"org_id": other}).status_code == 404
        shown = http.get(f"/admin/users/{user}").json()
        assert Decimal(shown["spend"]) == rows[0]["cost"] and shown["budget_period_start"].endswith("-01T00:00:00Z")
        assert Decimal(http.get(f"/admin/orgs/{org}").json()["spend"]) == rows[0]["cost"]
        assert http.get(f"/admin/keys/{other_id}").status_code == 404
