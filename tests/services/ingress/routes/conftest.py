"""Ingress apps in this process, each with its lifespan run for real: on the session's
nats-server and Postgres, the master key and a config with two models (nothing mocked;
no worker runs, so these tests stay on what the ingress answers itself)."""
from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.ingress.app import create_app
from shared.secrets import KNOWN_SECRETS
from shared.settings import IngressSettings, Settings

MASTER = "jg-master-" + secrets.token_hex(8)
CONFIG = """
providers:
  - {name: mock, type: mock}
models:
  - {name: gpt-4o-mini, deployments: [{provider: mock, model: gpt-4o-mini}]}
  - {name: gpt-4o, deployments: [{provider: mock, model: gpt-4o}]}
  - {name: text-embedding-3-small, mode: embedding, deployments: [{provider: mock, model: e}]}
"""

Ingress = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def ingress(tmp_path: Path, nats_url: str, database_url: str) -> Ingress:
    """`async with ingress(**ingress_settings, peer="1.2.3.4") as client:` an ingress
    replica; the client speaks to it as the peer address given."""
    config = tmp_path / "jetgate.yaml"
    config.write_text(CONFIG)

    @contextlib.asynccontextmanager
    async def start(peer: str = "127.0.0.1", **ingress: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(nats_url=nats_url, database_url=database_url, master_key=MASTER, config=config,
                            ingress=IngressSettings(**ingress))
        app = create_app(settings)
        known = set(KNOWN_SECRETS._values)  # the lifespan remembers the settings' secrets for the process
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, client=(peer, 40000))
                async with httpx.AsyncClient(transport=transport, base_url="http://ingress", timeout=10) as client:
                    yield client
        finally:  # ...this test's only: the session's passwordless `postgres` user is no secret to other tests
            KNOWN_SECRETS.clear()
            for value in known:
                KNOWN_SECRETS.add(value)

    return start


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


MASTER_HEADERS = bearer(MASTER)
