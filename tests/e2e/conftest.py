"""One gateway for the end-to-end tests, on servers of its own (so the service-level
tests' consumers never share its durable consumers), in front of a fake OpenAI and a fake
Anthropic and a fake Gemini (AI Studio and Vertex)."""
from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from jetgate.embedded.children import nats_child, postgres_child
from jetgate.embedded.nats import EmbeddedNats
from jetgate.embedded.ports import free_port
from jetgate.embedded.postgres import EmbeddedPostgres
from jetgate.supervisor import Supervisor
from shared.db.migrate import upgrade
from tests.e2e.gateway import Gateway, gateway_env, wait_for
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.redirect_upstream import FakeRedirector

UPSTREAM_KEY = "sk-upstream-" + secrets.token_hex(8)
# the key of an upstream that echoes it (tests/fakes/openai_upstream.py `echo-key*`): shaped
# like no known credential, so only the gateway's knowledge of it can keep it in
ECHO_KEY = "echo" + secrets.token_hex(16)
ECHO_MODELS = ("echo-key", "echo-key-400", "echo-key-500", "echo-key-stream", "echo-key-stream-error")
PRICE_IN = Decimal("0.15")
PRICE_OUT = Decimal("0.60")
# a model priced for its prompt cache: reads at a tenth of the input price, writes at 1.25× (Anthropic's)
PRICE_CACHED = Decimal("0.015")
PRICE_CACHE_WRITE = Decimal("0.1875")


def _config(fake: FakeOpenAI, echo: FakeOpenAI, anthropic: FakeAnthropic, gemini: FakeGemini,
            service_account: Path, redirector: FakeRedirector) -> dict[str, Any]:
    pricing = {"input_per_million": str(PRICE_IN), "output_per_million": str(PRICE_OUT)}

    def model(name: str, *upstreams: str, provider: str = "fake", mode: str = "chat") -> dict[str, Any]:
        return {"name": name, "mode": mode, "pricing": pricing,
                "deployments": [{"provider": provider, "model": u} for u in upstreams]}

    return {
        "providers": [
            {"name": "fake", "type": "openai", "base_url": fake.base_url, "api_key": "env:FAKE_UPSTREAM_KEY"},
            {"name": "down", "type": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
             "api_key": "env:FAKE_UPSTREAM_KEY", "connect_timeout_s": 2},
            {"name": "claude", "type": "anthropic", "base_url": anthropic.base_url, "api_key": "env:FAKE_UPSTREAM_KEY",
             "default_max_tokens": 1024},
            {"name": "gemini", "type": "gemini", "base_url": gemini.base_url, "api_key": "env:FAKE_UPSTREAM_KEY"},
            {"name": "vertex", "type": "gemini", "vertex": {
                "project": "fake-project", "location": "us-central1", "credentials": f"file:{service_account}",
                "token_url": gemini.token_url, "base_url": gemini.vertex_base_url}},
            {"name": "echo", "type": "openai", "base_url": echo.base_url, "api_key": "env:ECHO_UPSTREAM_KEY"},
            # pass-through: an upstream that redirects elsewhere; a type that takes no pass-through
            {"name": "redirector", "type": "openai", "base_url": redirector.base_url, "api_key": "env:FAKE_UPSTREAM_KEY"},
            {"name": "local-mock", "type": "mock"},
            # the same fake, said to serve the Responses API itself: /v1/responses goes there as sent
            {"name": "native", "type": "openai", "base_url": fake.base_url, "api_key": "env:FAKE_UPSTREAM_KEY",
             "native_responses": True},
        ],
        "models": [
            model("gpt-4o-mini", "gpt-4o-mini"),
            model("gpt-4o", "gpt-4o"),
            model("failover", "fail-500", "gpt-4o-mini"),
            model("always-500", "fail-500"),
            model("bad-request", "fail-400"),
            model("rate-limited", "fail-429"),
            # deployment health (test_provider_health.py): `health-a`/`health-b` fail when told to
            model("health-failover", "health-a", "gpt-4o-mini"),
            model("health-single", "health-b"),
            model("stream-no-usage", "stream-no-usage"),
            model("slow-stream", "slow-stream"),
            model("hang", "hang"),
            model("slow", "slow"),
            model("text-embedding-3-small", "text-embedding-3-small", mode="embedding"),
            model("unreachable", "gpt-4o-mini", provider="down"),
            model("claude-sonnet", "claude-sonnet-4-5", provider="claude"),
            model("claude-cached", "cache-hit", provider="claude"),
            {**model("claude-cache-priced", "cache-hit", provider="claude"),
             "pricing": {**pricing, "cached_input_per_million": str(PRICE_CACHED),
                         "cache_write_per_million": str(PRICE_CACHE_WRITE)}},
            model("claude-too-long", "too-long", provider="claude"),
            model("claude-embeddings", "claude-sonnet-4-5", provider="claude", mode="embedding"),  # Anthropic has none
            {"name": "claude-overloaded", "pricing": pricing,  # Anthropic overloaded: the next deployment answers
             "deployments": [{"provider": "claude", "model": "fail-529"}, {"provider": "fake", "model": "gpt-4o-mini"}]},
            model("gpt-3.5-turbo-instruct", "gpt-3.5-turbo-instruct", mode="completion"),
            {"name": "gpt-image-1", "mode": "image", "deployments": [{"provider": "fake", "model": "gpt-image-1"}],
             "pricing": {**pricing, "per_unit": "0.011"}},  # tokens, and 1.1 cents an image
            {"name": "dall-e-3", "mode": "image", "deployments": [{"provider": "fake", "model": "dall-e-3"}],
             "pricing": {"per_unit": "0.04"}},  # 4 cents an image
            {"name": "tts-1", "mode": "speech", "deployments": [{"provider": "fake", "model": "tts-1"}],
             "pricing": {"per_unit": "0.000015"}},  # $15 per million characters
            {"name": "whisper", "mode": "transcription", "deployments": [{"provider": "fake", "model": "whisper-1"}],
             "pricing": {"per_unit": "0.0001"}},  # a cent a minute
            model("gpt-4o-transcribe", "gpt-4o-transcribe", mode="transcription"),
            model("omni-moderation-latest", "omni-moderation-latest", mode="moderation"),
            model("claude-completion", "claude-sonnet-4-5", provider="claude", mode="completion"),  # Anthropic has none
            model("gemini-flash", "gemini-2.5-flash", provider="gemini"),
            model("gemini-vertex", "gemini-2.5-pro", provider="vertex"),
            model("gemini-embedding", "gemini-embedding-001", provider="gemini", mode="embedding"),
            *(model(name, name, provider="echo") for name in ECHO_MODELS),
            model("gpt-4o-native", "gpt-4o", provider="native"),
            model("o4-native", "o4-mini", provider="native"),
            model("native-stream-error", "stream-error", provider="native"),
            model("native-failover", "fail-500", "gpt-4o", provider="native"),
            {"name": "native-then-chat", "pricing": pricing,  # a native deployment fails: the next is translated
             "deployments": [{"provider": "native", "model": "fail-503"}, {"provider": "fake", "model": "gpt-4o-mini"}]},
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
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(expected_api_key=UPSTREAM_KEY, retry_after_s=7) as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_gemini() -> Iterator[FakeGemini]:
    with FakeGemini(expected_api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
def redirect_target() -> Iterator[FakeOpenAI]:
    """The other host the redirector points at: it must never be called."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="session")
def redirector(redirect_target: FakeOpenAI) -> Iterator[FakeRedirector]:
    with FakeRedirector(f"http://127.0.0.1:{redirect_target.port}") as fake:
        yield fake


@pytest.fixture(scope="session")
def gateway_config(tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI, echo_upstream: FakeOpenAI,
                   fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini, redirector: FakeRedirector) -> Path:
    """The e2e gateways' jetgate.yaml: every fake upstream, the models the tests name."""
    root = tmp_path_factory.mktemp("config")
    service_account = root / "vertex-sa.json"
    service_account.write_text(json.dumps(fake_gemini.service_account()))
    config = root / "jetgate.yaml"
    config.write_text(yaml.safe_dump(_config(fake_openai, echo_upstream, fake_anthropic, fake_gemini, service_account,
                                              redirector)))
    return config


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, gateway_config: Path) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("gateway")
    nats = EmbeddedNats(root / "nats")
    postgres = EmbeddedPostgres(root / "pg" / "data")
    supervisor = Supervisor()  # the servers too, as under `jetgate up`: a killed one comes back
    gw: Gateway | None = None
    try:
        supervisor.add(nats_child(nats))
        supervisor.add(postgres_child(postgres))
        nats.wait_ready()
        postgres.wait_ready()
        upgrade(postgres.url)
        config = gateway_config
        port = free_port()
        master_key = "jg-master-" + secrets.token_hex(16)
        env = gateway_env(nats_url=nats.url, database_url=postgres.url, clickhouse_url=f"chdb://{root / 'chdb'}",
                          config=config, port=port, master_key=master_key, upstream_key=UPSTREAM_KEY)
        gw = Gateway(env={**env, "ECHO_UPSTREAM_KEY": ECHO_KEY},
                     workdir=root, port=port, master_key=master_key, supervisor=supervisor)
        gw.start_all()
        yield gw
    finally:
        supervisor.stop_all(timeout=30)  # the services in order, then nats-server and Postgres


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


def charged(gateway: Gateway, key_id: str, count: int) -> list[Any]:
    """Wait until the key has exactly `count` usage rows in the Postgres ledger and in
    ClickHouse (through accounting), each request once; returns the ledger rows."""
    def ledger() -> list[Any]:
        return pg_rows(gateway, "SELECT request_id, status FROM spend_ledger WHERE key_id = $1", key_id)

    def analytics() -> int:
        return sum(row["requests"] for row in gateway.usage(key_id=key_id, group_by="key_id"))

    wait_for(lambda: len(ledger()) >= count, timeout=60)
    wait_for(lambda: analytics() >= count, timeout=60)
    time.sleep(1.0)  # a row written twice would show by now: the counts must not move past `count`
    rows = ledger()
    assert len(rows) == count and analytics() == count, (len(rows), analytics(), count)
    assert len({row["request_id"] for row in rows}) == count  # each request once
    return rows
