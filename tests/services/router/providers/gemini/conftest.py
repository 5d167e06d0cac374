"""Fixtures for the Gemini adapter's wire tests: one fake Gemini server per module, an AI
Studio provider with its key from an env reference, a Vertex provider with a service-account
key file whose token endpoint is the fake's."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.router.http_client import UpstreamHttp
from services.router.providers.gemini import GeminiConfig, GeminiProvider, VertexConfig
from tests.fakes.gemini_upstream import FakeGemini

KEY = "AIzaSyFakeGeminiKeyForRouterTests0123456"
KEY_ENV = "JETGATE_TEST_GEMINI_KEY"


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(expected_api_key=KEY, retry_delay_s=13) as server:
        yield server


@pytest.fixture
def studio(gemini: FakeGemini, http: UpstreamHttp, monkeypatch: pytest.MonkeyPatch) -> GeminiProvider:
    monkeypatch.setenv(KEY_ENV, KEY)
    gemini.clear()
    config = GeminiConfig(name="gem", base_url=gemini.base_url, api_key=f"env:{KEY_ENV}", timeout_s=10,
                          headers={"x-team": "router-tests"})
    return GeminiProvider(config, http)


def vertex_config(gemini: FakeGemini, key_file: Path, **fields: object) -> GeminiConfig:
    vertex = VertexConfig(project="fake-project", location="europe-west4", credentials=f"file:{key_file}",
                          token_url=gemini.token_url, base_url=gemini.vertex_base_url, **fields)  # type: ignore[arg-type]
    return GeminiConfig(name="vertex", vertex=vertex, timeout_s=10)


@pytest.fixture
def key_file(gemini: FakeGemini, tmp_path: Path) -> Path:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(gemini.service_account()))
    return path


@pytest.fixture
def vertex(gemini: FakeGemini, key_file: Path, http: UpstreamHttp) -> GeminiProvider:
    gemini.clear()
    return GeminiProvider(vertex_config(gemini, key_file), http)
