"""Fixtures for the router tests: real fake-provider HTTP servers (OpenAI, Anthropic) and
the router's own upstream client.

`fake` and `fake_anthropic` are per module and shared by its tests; tests that count what
the upstream received call `.clear()` first.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from services.router.http_client import UpstreamHttp
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[UpstreamHttp]:
    client = UpstreamHttp()
    yield client
    await client.close()
