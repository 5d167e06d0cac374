"""One gateway for the end-to-end tests, on servers of its own (so the service-level
tests' consumers never share its durable consumers), in front of a fake OpenAI."""
from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from jetgate.embedded.nats import EmbeddedNats
from jetgate.embedded.ports import free_port
from jetgate.embedded.postgres import EmbeddedPostgres
from shared.db.migrate import upgrade
from tests.e2e.gateway import Gateway, gateway_env
from tests.fakes.openai_upstream import FakeOpenAI

UPSTREAM_KEY = "sk-upstream-" + secrets.token_hex(8)
# the key of an upstream that echoes it (tests/fakes/openai_upstream.py `echo-key*`): shaped
# like no known credential, so only the gateway's knowledge of it can keep it in
ECHO_KEY = "echo" + secrets.token_hex(16)
ECHO_MODELS = ("echo-key", "echo-key-400", "echo-key-500", "echo-key-stream", "echo-key-stream-error")
PRICE_IN = Decimal("0.15")
PRICE_OUT = Decimal("0.60")


def _config(fake: FakeOpenAI, echo: FakeOpenAI) -> dict[str, Any]:
    pricing = {"input_per_million": str(PRICE_IN), "output_per_million": str(PRICE_OUT)}

    def model(name: str, *upstreams: str, provider: str = "fake", mode: str = "chat") -> dict[str, Any]:
        return {"name": name, "mode": mode, "pricing": pricing,
                "deployments": [{"provider": provider, "model": u} for u in upstreams]}

    return {
        "providers": [
            {"name": "fake", "type": "openai", "base_url": fake.base_url, "api_key": "env:FAKE_UPSTREAM_KEY"},
            {"name": "down", "type": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
             "api_key": "env:FAKE_UPSTREAM_KEY", "connect_timeout_s": 2},
            {"name": "echo", "type": "openai", "base_url": echo.base_url, "api_key": "env:ECHO_UPSTREAM_KEY"},
        ],
        "models": [
            model("gpt-4o-mini", "gpt-4o-mini"),
            model("gpt-4o", "gpt-4o"),
            model("failover", "fail-500", "gpt-4o-mini"),
            model("always-500", "fail-500"),
            model("bad-request", "fail-400"),
            model("rate-limited", "fail-429"),
            model("stream-no-usage", "stream-no-usage"),
            model("slow-stream", "slow-stream"),
            model("text-embedding-3-small", "text-embedding-3-small", mode="embedding"),
            model("unreachable", "gpt-4o-mini", provider="down"),
            *(model(name, name, provider="echo") for name in ECHO_MODELS),
        ],
        "guardrails": {"enabled": True, "pii": {"email": "redact", "card": "redact"},
                       "rules": [{"name": "no-top-secret", "pattern": "(?i)top secret", "action": "block"}]},
    }


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(expected_api_key=UPSTREAM_KEY, retry_after_s=7) as fake:
        yield fake


@pytest.fixture(scope="session")
def echo_upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI,
            echo_upstream: FakeOpenAI) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("gateway")
    nats = EmbeddedNats(root / "nats")
    postgres = EmbeddedPostgres(root / "pg" / "data")
    gw: Gateway | None = None
    try:
        nats.start()
        postgres.start()
        upgrade(postgres.url)
        config = root / "jetgate.yaml"
        config.write_text(yaml.safe_dump(_config(fake_openai, echo_upstream)))
        port = free_port()
        master_key = "jg-master-" + secrets.token_hex(16)
        env = gateway_env(nats_url=nats.url, database_url=postgres.url, clickhouse_url=f"chdb://{root / 'chdb'}",
                          config=config, port=port, master_key=master_key, upstream_key=UPSTREAM_KEY)
        gw = Gateway(env={**env, "ECHO_UPSTREAM_KEY": ECHO_KEY},
                     workdir=root, port=port, master_key=master_key)
        gw.start_all()
        yield gw
    finally:
        if gw is not None:
            gw.stop()
        postgres.stop()
        nats.stop()


def pg_rows(gateway: Gateway, sql: str, *args: Any) -> list[Any]:
    """Run one query on the gateway's Postgres (asyncpg, outside any running loop)."""
    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(gateway.env["JETGATE_DATABASE_URL"])
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def workdir(gateway: Gateway) -> Path:
    return gateway.workdir
