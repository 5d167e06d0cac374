"""One conformance suite for every provider type in the registry.

Each adapter must answer in OpenAI's shapes whatever its upstream is: the OpenAI-compatible
presets talk to a real fake-OpenAI server over HTTP, `azure` to a fake Azure OpenAI, the
`anthropic` adapter to a real fake Anthropic server, `gemini` to a real fake Gemini server,
`bedrock` to a fake Bedrock runtime (SigV4 verified, event-stream framing), the `mock`
adapter answers locally. A provider type added to
PROVIDER_TYPES without a config here fails the first test. Types whose upstream has no
embeddings (NO_EMBEDDINGS) must refuse them with a clear 400 instead.
"""
from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from services.router.http_client import UpstreamHttp
from services.router.providers import PROVIDER_TYPES, build_provider
from services.router.providers.anthropic import AnthropicConfig
from services.router.providers.azure import AzureConfig
from services.router.providers.base import ChatCall, Chunk, EmbeddingsCall, Provider, ProviderConfig
from services.router.providers.bedrock import BedrockConfig
from services.router.providers.gemini import GeminiConfig
from services.router.providers.mock import MockConfig
from services.router.providers.openai import OpenAIConfig
from services.router.providers.openai.presets import PRESETS
from shared.errors import GatewayError
from tests.fakes.azure_upstream import FakeAzure
from tests.fakes.bedrock_upstream import CREDENTIALS, REGION, FakeBedrock
from tests.fakes.gemini_upstream import FakeGemini

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the gateway."}]
DIMENSIONS = 8

# provider type -> (config for this suite, the model name to ask for); fakes are fixtures
# of tests/services/router/conftest.py, started only for the types that use them
Factory = Callable[[pytest.FixtureRequest], tuple[ProviderConfig, str]]
AZURE_KEY = "conformance-azure-key"


def _compatible(preset: str) -> Factory:
    # the fake speaks OpenAI: it streams usage only when asked, as OpenAI does
    return lambda fixtures: (OpenAIConfig(name=f"conformance-{preset}", type=preset, timeout_s=10, stream_usage=True,
                                          base_url=fixtures.getfixturevalue("fake").base_url), "gpt-4o-mini")


CONFIGS: dict[str, Factory] = {
    **{preset: _compatible(preset) for preset in PRESETS},
    "azure": lambda fixtures: (AzureConfig(name="conformance-azure", endpoint=fixtures.getfixturevalue("azure_fake").endpoint,
                                           api_key="env:CONFORMANCE_AZURE_KEY", timeout_s=10), "gpt-4o-mini"),
    "anthropic": lambda fixtures: (AnthropicConfig(name="conformance-anthropic", timeout_s=10,
                                                   base_url=fixtures.getfixturevalue("fake_anthropic").base_url),
                                   "claude-sonnet-4-5"),
    "gemini": lambda fixtures: (GeminiConfig(name="conformance-gemini", timeout_s=10,
                                             base_url=fixtures.getfixturevalue("gemini_fake").base_url), "gemini-2.5-flash"),
    "bedrock": lambda fixtures: (BedrockConfig(name="conformance-bedrock", region=REGION, timeout_s=10,
                                               endpoint_url=fixtures.getfixturevalue("bedrock_fake").endpoint,
                                               access_key_id="env:CONFORMANCE_AWS_KEY_ID",
                                               secret_access_key="env:CONFORMANCE_AWS_SECRET"),
                                 "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    "mock": lambda fixtures: (MockConfig(name="conformance-mock", stream_chunks=3), "mock-model"),
}
NO_EMBEDDINGS = {"anthropic"}
# types whose chat models do not embed: the embedding model to ask for, and the dimensions it takes
EMBEDDING_MODELS = {"bedrock": "amazon.titan-embed-text-v2:0"}
EMBEDDING_DIMENSIONS = {"bedrock": 256}  # Titan V2 takes 256, 512 or 1024


@pytest.fixture
def gemini_fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


@pytest.fixture
def azure_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzure]:
    monkeypatch.setenv("CONFORMANCE_AZURE_KEY", AZURE_KEY)
    with FakeAzure(api_key=AZURE_KEY) as server:
        yield server


@pytest.fixture
def bedrock_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrock]:
    monkeypatch.setenv("CONFORMANCE_AWS_KEY_ID", CREDENTIALS.access_key_id)
    monkeypatch.setenv("CONFORMANCE_AWS_SECRET", CREDENTIALS.secret_access_key)
    with FakeBedrock() as server:
        yield server


def _embedding_model(provider: Provider[Any], model: str) -> tuple[str, int]:
    kind = provider.config.type
    return EMBEDDING_MODELS.get(kind, model), EMBEDDING_DIMENSIONS.get(kind, DIMENSIONS)


def test_every_registered_provider_type_is_in_the_suite() -> None:
    assert set(CONFIGS) == set(PROVIDER_TYPES)
    assert set(PROVIDER_TYPES) >= NO_EMBEDDINGS


def _build(request: pytest.FixtureRequest, http: UpstreamHttp) -> tuple[Provider[Any], str]:
    config, model = CONFIGS[request.param](request)
    provider = build_provider(config, http)
    assert provider.name == config.name
    return provider, model


@pytest.fixture(params=sorted(PROVIDER_TYPES))
def adapter(request: pytest.FixtureRequest, http: UpstreamHttp) -> tuple[Provider[Any], str]:
    return _build(request, http)


@pytest.fixture(params=sorted(set(PROVIDER_TYPES) - NO_EMBEDDINGS))
def embedder(request: pytest.FixtureRequest, http: UpstreamHttp) -> tuple[Provider[Any], str]:
    return _build(request, http)


@pytest.fixture(params=sorted(NO_EMBEDDINGS))
def non_embedder(request: pytest.FixtureRequest, http: UpstreamHttp) -> tuple[Provider[Any], str]:
    return _build(request, http)


async def test_chat_returns_a_chat_completion_with_usage(adapter: tuple[Provider[Any], str]) -> None:
    provider, model = adapter
    done = await provider.chat(ChatCall({"model": "gateway-name", "messages": MESSAGES}, model))

    body = orjson.loads(done.raw)
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == model  # the deployment's model, not the gateway's name
    choice = body["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert done.usage is not None
    assert done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    assert body["usage"]["total_tokens"] == done.usage.total_tokens


async def _collect(provider: Provider[Any], model: str) -> list[Chunk]:
    return [chunk async for chunk in provider.chat_stream(ChatCall({"model": "gateway-name", "messages": MESSAGES}, model))]


async def test_chat_stream_yields_chunks_ending_with_finish_and_usage(adapter: tuple[Provider[Any], str]) -> None:
    provider, model = adapter
    chunks = await _collect(provider, model)

    assert len(chunks) >= 3
    parsed = [orjson.loads(chunk.raw) for chunk in chunks]  # the raw bytes are what gets relayed
    assert all(p["object"] == "chat.completion.chunk" for p in parsed)
    assert len({p["id"] for p in parsed}) == 1

    *content, finish, usage_only = parsed
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in content)
    assert text.strip() and "".join(c.text for c in chunks) == text  # the text the router counts when no usage comes
    assert all(c["choices"][0]["finish_reason"] is None for c in content)
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert not chunks[-2].usage_only

    assert chunks[-1].usage_only and usage_only["choices"] == []
    usage_only = chunks[-1]
    usage = usage_only.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_chat_stream_usage_matches_plain_chat(adapter: tuple[Provider[Any], str]) -> None:
    provider, model = adapter
    plain = await provider.chat(ChatCall({"model": "x", "messages": MESSAGES}, model))
    streamed = (await _collect(provider, model))[-1].usage
    assert plain.usage is not None and streamed is not None
    assert streamed.prompt_tokens == plain.usage.prompt_tokens
    assert streamed.completion_tokens == plain.usage.completion_tokens


async def test_embeddings_return_a_list_of_float_vectors(embedder: tuple[Provider[Any], str]) -> None:
    provider, model = embedder
    model, dimensions = _embedding_model(provider, model)
    inputs = ["first text", "second, longer text"]
    done = await provider.embeddings(EmbeddingsCall({"model": "x", "input": inputs, "dimensions": dimensions}, model))

    body = orjson.loads(done.raw)
    assert body["object"] == "list" and body["model"] == model
    assert [item["index"] for item in body["data"]] == [0, 1]
    for item in body["data"]:
        assert item["object"] == "embedding"
        assert len(item["embedding"]) == dimensions
        assert all(isinstance(v, float) for v in item["embedding"])
    assert body["data"][0]["embedding"] != body["data"][1]["embedding"]
    assert done.usage is not None and done.usage.prompt_tokens > 0
    assert done.usage.completion_tokens == 0
    assert done.usage.total_tokens == done.usage.prompt_tokens


async def test_embeddings_in_base64_decode_to_the_float_vectors(embedder: tuple[Provider[Any], str]) -> None:
    provider, model = embedder
    model, dimensions = _embedding_model(provider, model)
    request = {"model": "x", "input": "one text", "dimensions": dimensions}
    floats = await provider.embeddings(EmbeddingsCall(request, model))
    encoded = await provider.embeddings(EmbeddingsCall({**request, "encoding_format": "base64"}, model))

    item = orjson.loads(encoded.raw)["data"][0]
    assert isinstance(item["embedding"], str)
    raw = base64.b64decode(item["embedding"])
    assert len(raw) == 4 * dimensions
    decoded = list(struct.unpack(f"<{dimensions}f", raw))
    assert decoded == pytest.approx(orjson.loads(floats.raw)["data"][0]["embedding"], abs=1e-6)
    assert encoded.usage is not None and encoded.usage.prompt_tokens == floats.usage.prompt_tokens  # type: ignore[union-attr]


async def test_embeddings_without_an_upstream_endpoint_are_a_clear_400(non_embedder: tuple[Provider[Any], str]) -> None:
    provider, model = non_embedder
    with pytest.raises(GatewayError) as caught:
        await provider.embeddings(EmbeddingsCall({"model": "x", "input": "one text"}, model))
    error = caught.value
    assert (error.status, error.code, error.retryable) == (400, "unsupported_endpoint", False)
    assert provider.name in error.message and error.body().error.type == "invalid_request_error"
