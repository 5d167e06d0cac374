"""What each service loads when it starts: nothing it does not use. Tests and replicas start
services over and over; a stray import costs every one of them CPU and memory."""
from __future__ import annotations

import subprocess
import sys

import pytest

# never needed at start; botocore and google-auth only by a Bedrock or Vertex deployment's first call
# aiohttp: only the router calls HTTP through it (nats-py would import it for WebSockets: services/__main__.py)
NOT_LOADED = {
    "ingress": {"botocore", "google", "clickhouse_connect", "chdb", "httpx", "aiohttp"},
    "guardrails": {"fastapi", "starlette", "uvicorn", "sqlalchemy", "httpx", "botocore", "google", "clickhouse_connect",
                   "aiohttp"},
    "router": {"fastapi", "starlette", "uvicorn", "sqlalchemy", "httpx", "botocore", "google", "clickhouse_connect"},
    "accounting": {"fastapi", "starlette", "uvicorn", "httpx", "botocore", "google", "chdb", "aiohttp"},
}


@pytest.mark.parametrize("service", sorted(NOT_LOADED))
def test_a_service_starts_without_what_it_does_not_use(service: str) -> None:
    probe = ("import sys\nfrom services.__main__ import load\nfrom shared.settings import Settings\n"
             f"load({service!r}, Settings())\n"  # as `python -m services SERVICE` starts it
             "print(' '.join(sorted({m.split('.')[0] for m in sys.modules if sys.modules[m] is not None})))")
    loaded = set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                                check=True).stdout.split())
    assert "nats" in loaded  # the probe saw the service's imports
    assert loaded & NOT_LOADED[service] == set()


def test_a_websocket_server_url_keeps_aiohttp_for_nats() -> None:
    probe = ("import sys\nfrom services.__main__ import load\nfrom shared.settings import Settings\n"
             "load('guardrails', Settings(nats_url='wss://nats.example:443'))\n"
             "import nats.aio.transport\nprint(nats.aio.transport.aiohttp is not None)")
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert shown.stdout.split() == ["True"]
