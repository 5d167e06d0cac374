"""Fixtures for the router tests: a real fake-OpenAI HTTP server and the router's own
upstream client.

`fake` is per module and shared by its tests; tests that count what the upstream received
call `fake.clear()` first.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from services.router.http_client import UpstreamHttp
from tests.fakes.openai_upstream import FakeOpenAI


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[UpstreamHttp]:
    client = UpstreamHttp()
    yield client
    await client.close()
