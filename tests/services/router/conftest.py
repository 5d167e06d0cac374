"""Fixtures for the router tests: a real fake-OpenAI HTTP server and a real httpx client.

`fake` is per module and shared by its tests; tests that count what the upstream received
call `fake.clear()` first. `http` runs every adapter test twice: on httpx's own transport,
and on the pooled client the router process really uses (services/router/http_client.py).
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from services.router.http_client import make_http_client
from tests.fakes.openai_upstream import FakeOpenAI


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(params=["httpx", "router-client"])
async def http(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    async with (httpx.AsyncClient() if request.param == "httpx" else make_http_client()) as client:
        yield client
