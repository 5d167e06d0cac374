"""`GET /admin/usage` on a running gateway (groups, totals, error rate, percentiles), and
the audit chain the live accounting service builds under real traffic."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai

from tests.e2e.conftest import pg_rows
from tests.e2e.gateway import Gateway, wait_for

REPO = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "Group me"}]


def test_admin_usage_groups_totals_and_the_live_audit_chain(gateway: Gateway, tmp_path: Path) -> None:
    key, key_id = gateway.create_key("analytics")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]

    def grouped() -> dict[str, Any] | None:
        with gateway.admin() as http:
            response = http.get("/admin/usage", params={"key_id": key_id, "group_by": "key,model,hour"})
            response.raise_for_status()
            body: dict[str, Any] = response.json()
        return body if body["totals"] and body["totals"]["requests"] == 3 else None

    body = wait_for(grouped)
    [row] = body["rows"]
    assert row["group"]["key"] == key_id and row["group"]["model"] == "gpt-4o-mini"
    assert row["group"]["hour"].endswith(":00:00Z")
    assert row["requests"] == 3 and row["errors"] == 0 and row["error_rate"] == 0
    assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"] <= row["latency_p99_ms"]
    assert body["totals"]["total_tokens"] == row["total_tokens"] > 0
    details = ("cached_tokens", "cache_write_tokens", "reasoning_tokens")  # reported, 0 for this model
    assert [body["totals"][name] for name in details] == [row[name] for name in details] == [0, 0, 0]

    with gateway.admin() as http:
        bad = http.get("/admin/usage", params={"group_by": "colour"})
    assert bad.status_code == 400 and "org, team, user, key, model, provider, hour, day" in bad.json()["error"]["message"]

    def chained() -> list[Any]:
        rows = pg_rows(gateway, "SELECT org_id, stream_seq, hash FROM audit_log WHERE key_id = $1", key_id)
        return rows if len(rows) >= 6 else []  # received + completed per request

    rows = wait_for(chained)
    assert all(r["stream_seq"] is not None and len(r["hash"]) == 64 for r in rows)
    env = {**os.environ, "JETGATE_DATABASE_URL": gateway.env["JETGATE_DATABASE_URL"], "JETGATE_HOME": str(tmp_path)}
    verify = subprocess.run([sys.executable, "-m", "jetgate.cli", "audit", "verify", "--org", rows[0]["org_id"]],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    assert "audit chain intact" in verify.stdout
