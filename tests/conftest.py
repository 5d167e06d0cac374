"""Real servers for the whole test session: nats-server (JetStream) and Postgres from
their wheels, ClickHouse through chDB. Nothing here is a mock."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from sqlalchemy.ext.asyncio import AsyncEngine

from jetgate.embedded.nats import EmbeddedNats
from jetgate.embedded.postgres import EmbeddedPostgres
from shared.bus import connect, ensure_streams
from shared.db.engine import make_engine
from shared.db.migrate import upgrade


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedNats) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(postgres_server: EmbeddedPostgres) -> str:
    upgrade(postgres_server.url)
    return postgres_server.url


@pytest.fixture
def chdb_dsn(tmp_path: Path) -> str:
    """A fresh chDB directory. Only one process may open it at a time."""
    return f"chdb://{tmp_path / 'chdb'}"


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """A NATS client with the gateway's streams in place."""
    client = await connect(nats_url, "tests")
    await ensure_streams(client.jetstream())
    yield client
    await client.drain()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def org_id() -> str:
    """An organisation of the test's own, so tests sharing servers never see each other's rows."""
    return "org-" + uuid.uuid4().hex[:12]
