"""What each service loads when it starts: nothing it does not use. Tests and replicas start
services over and over; a stray import costs every one of them CPU and memory."""
from __future__ import annotations

import subprocess
import sys

import pytest

# never needed at start; botocore and google-auth only by a Bedrock or Vertex deployment's first call
NOT_LOADED = {
    "ingress": {"botocore", "google", "clickhouse_connect", "chdb", "httpx"},
    "guardrails": {"fastapi", "starlette", "uvicorn", "sqlalchemy", "httpx", "botocore", "google", "clickhouse_connect"},
    "router": {"fastapi", "starlette", "uvicorn", "sqlalchemy", "httpx", "botocore", "google", "clickhouse_connect"},
    "accounting": {"fastapi", "starlette", "uvicorn", "httpx", "botocore", "google", "chdb"},
}


@pytest.mark.parametrize("service", sorted(NOT_LOADED))
def test_a_service_starts_without_what_it_does_not_use(service: str) -> None:
    probe = (f"import sys, services.{service}.__main__\n"
             "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                                check=True).stdout.split())
    assert "nats" in loaded  # the probe saw the service's imports
    assert loaded & NOT_LOADED[service] == set()
