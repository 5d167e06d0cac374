"""Limits against the session's real nats-server: a KV bucket of their own per test, and
'replicas' as separate NATS connections, each with its own allowances."""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from services.ingress.limits.store import LimitStore
from shared.bus import connect


@pytest.fixture
async def replicas(nats_url: str) -> AsyncIterator[list[Client]]:
    clients = [await connect(nats_url, f"replica-{i}") for i in range(4)]
    yield clients
    for client in clients:
        if client.is_connected:
            await client.close()


@pytest.fixture
async def bucket(replicas: list[Client]) -> AsyncIterator[str]:
    name = "LIMITS_T" + uuid.uuid4().hex[:10]
    await replicas[0].jetstream().create_key_value(KeyValueConfig(bucket=name, history=1))
    yield name
    with contextlib.suppress(Exception):  # a test closed that connection
        await replicas[0].jetstream().delete_key_value(name)


async def store_of(client: Client, bucket: str, timeout_s: float = 2.0) -> LimitStore:
    kv: KeyValue = await client.jetstream().key_value(bucket)
    return LimitStore(kv, timeout_s)
