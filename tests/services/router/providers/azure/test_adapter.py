"""The `azure` adapter on the wire, against a fake Azure OpenAI and Entra ID token endpoint:
deployment URLs with `api-version`, the v1 API, the `api-key` header, Entra tokens fetched
once and renewed before they expire, errors mapped without leaking a credential."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest

from services.router.http_client import UpstreamHttp
from services.router.providers import parse_provider
from services.router.providers.azure import AzureConfig, AzureProvider
from services.router.providers.base import ChatCall, EmbeddingsCall, ResponsesCall
from shared.config import ProviderEntry
from shared.errors import GatewayError
from tests.fakes.azure_upstream import API_VERSION, RESPONSES_API_VERSION, FakeAzure

KEY = "azure-key-0123456789abcdef"
CLIENT_SECRET = "entra-secret-~0123456789"
MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzure]:
    monkeypatch.setenv("AZURE_TEST_KEY", KEY)
    monkeypatch.setenv("AZURE_TEST_SECRET", CLIENT_SECRET)
    with FakeAzure(api_key=KEY, client_id="app-1", client_secret=CLIENT_SECRET) as server:
        yield server


def config(fake: FakeAzure, **fields: object) -> AzureConfig:
    parsed = parse_provider(ProviderEntry.model_validate(
        {"name": "az", "type": "azure", "endpoint": fake.endpoint + "/", **fields}))
    assert isinstance(parsed, AzureConfig)
    return parsed


def entra(fake: FakeAzure, secret: str = "env:AZURE_TEST_SECRET", **extra: object) -> dict[str, object]:
    return {"tenant_id": "t-1", "client_id": "app-1", "client_secret": secret,
            "token_url": fake.endpoint + "/entra/token", **extra}


async def test_chat_goes_to_the_deployment_url_with_the_api_key(azure: FakeAzure, http: UpstreamHttp) -> None:
    adapter = AzureProvider(config(azure, api_key="env:AZURE_TEST_KEY"), http)
    done = await adapter.chat(ChatCall({"model": "gw", "messages": MESSAGES}, "my-gpt4o-deployment"))
    assert orjson.loads(done.raw)["object"] == "chat.completion"
    assert done.usage is not None and done.usage.prompt_tokens > 0
    assert azure.deployments == ["my-gpt4o-deployment"] and azure.api_versions == [API_VERSION]
    sent = azure.requests[-1]
    assert sent.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert sent.headers["api-key"] == KEY and "authorization" not in sent.headers


async def test_streams_and_embeddings_take_the_same_route(azure: FakeAzure, http: UpstreamHttp) -> None:
    adapter = AzureProvider(config(azure, api_key="env:AZURE_TEST_KEY"), http)
    chunks = [c async for c in adapter.chat_stream(ChatCall({"model": "gw", "messages": MESSAGES}, "dep"))]
    assert any(c.usage is not None for c in chunks) and "".join(c.text for c in chunks)
    done = await adapter.embeddings(EmbeddingsCall({"model": "gw", "input": ["a", "b"]}, "embed-dep"))
    assert len(orjson.loads(done.raw)["data"]) == 2
    assert azure.deployments == ["dep", "embed-dep"]


async def test_v1_api_needs_no_version_in_the_url(azure: FakeAzure, http: UpstreamHttp) -> None:
    adapter = AzureProvider(config(azure, api_key="env:AZURE_TEST_KEY", api_version="v1"), http)
    await adapter.chat(ChatCall({"model": "gw", "messages": MESSAGES}, "gpt-4o-mini"))
    assert azure.requests[-1].path == "/openai/v1/chat/completions" and azure.api_versions == [None]
    assert azure.requests[-1].json["model"] == "gpt-4o-mini"


async def test_an_entra_token_is_fetched_once_for_many_calls(azure: FakeAzure, http: UpstreamHttp) -> None:
    adapter = AzureProvider(config(azure, entra=entra(azure)), http)
    await asyncio.gather(*(adapter.chat(ChatCall({"model": "gw", "messages": MESSAGES}, "dep")) for _ in range(5)))
    assert len(azure.tokens_issued) == 1
    form = azure.token_forms[0]
    assert form["scope"] == "https://cognitiveservices.azure.com/.default" and form["client_id"] == "app-1"
    calls = [r for r in azure.requests if r.path.startswith("/openai/")]
    assert len(calls) == 5
    assert {r.headers["authorization"] for r in calls} == {f"Bearer {azure.tokens_issued[0]}"}
    assert all("api-key" not in r.headers for r in calls)


async def test_a_token_near_its_expiry_is_renewed(azure: FakeAzure, http: UpstreamHttp) -> None:
    azure.token_lifetime_s = 60
    adapter = AzureProvider(config(azure, entra=entra(azure, refresh_before_s=300)), http)
    for _ in range(2):
        await adapter.chat(ChatCall({"model": "gw", "messages": MESSAGES}, "dep"))
    assert len(azure.tokens_issued) == 2  # each token was already within its renewal window


async def test_a_refused_app_is_a_502_naming_the_provider_never_the_secret(
        azure: FakeAzure, http: UpstreamHttp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_WRONG_SECRET", "wrong-secret-value-123")
    adapter = AzureProvider(config(azure, entra=entra(azure, secret="env:AZURE_WRONG_SECRET")), http)
    with pytest.raises(GatewayError) as caught:
        await adapter.chat(ChatCall({"model": "gw", "messages": MESSAGES}, "dep"))
    error = caught.value
    assert error.status == 502 and error.retryable and "az" in error.message
    assert "wrong-secret-value-123" not in error.message


async def test_a_wrong_key_is_a_502_and_a_wrong_version_fails_over(azure: FakeAzure, http: UpstreamHttp,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_BAD_KEY", "bad-key-000")
    with pytest.raises(GatewayError) as caught:
        await AzureProvider(config(azure, api_key="env:AZURE_BAD_KEY"), http).chat(
            ChatCall({"model": "gw", "messages": MESSAGES}, "dep"))
    assert caught.value.status == 502 and caught.value.code == "upstream_auth_failed"
    assert "bad-key-000" not in caught.value.message
    with pytest.raises(GatewayError) as caught:
        await AzureProvider(config(azure, api_key="env:AZURE_TEST_KEY", api_version="2023-01-01"), http).chat(
            ChatCall({"model": "gw", "messages": MESSAGES}, "dep"))
    assert caught.value.retryable  # a deployment the resource does not have: the next one is tried


def test_exactly_one_credential(azure: FakeAzure) -> None:
    with pytest.raises(ValueError, match="exactly one of api_key or entra"):
        config(azure)
    with pytest.raises(ValueError, match="exactly one of api_key or entra"):
        config(azure, api_key="env:AZURE_TEST_KEY", entra=entra(azure))


@pytest.mark.parametrize(("version", "path", "native"), [
    ("v1", "/openai/v1/responses", True),
    (RESPONSES_API_VERSION, "/openai/responses", True),
    (API_VERSION, None, False),  # a dated GA version before the Responses API: translated to chat
])
async def test_the_responses_api_where_the_version_has_it(azure: FakeAzure, http: UpstreamHttp, version: str,
                                                          path: str | None, native: bool) -> None:
    adapter = AzureProvider(config(azure, api_key="env:AZURE_TEST_KEY", api_version=version), http)
    assert adapter.serves_responses() is native
    if path is None:
        return
    done = await adapter.responses(ResponsesCall({"model": "gw", "input": "Say hello.", "store": False}, "dep-5"))
    answer = orjson.loads(done.raw)
    assert answer["object"] == "response" and answer["model"] == "dep-5"  # the deployment, named in the body
    assert done.usage is not None and done.usage.completion_tokens == 10
    sent = azure.requests[-1]
    assert sent.path == path and sent.json["model"] == "dep-5" and sent.json["store"] is False
    events = [c async for c in adapter.responses_stream(ResponsesCall({"model": "gw", "input": "Hi"}, "dep-5"))]
    assert orjson.loads(events[0].raw)["type"] == "response.created" and events[-1].usage is not None


def test_native_responses_can_be_said_either_way(azure: FakeAzure) -> None:
    assert config(azure, api_key="env:AZURE_TEST_KEY", native_responses=True).serves_responses
    assert not config(azure, api_key="env:AZURE_TEST_KEY", api_version="v1", native_responses=False).serves_responses
    assert config(azure, api_key="env:AZURE_TEST_KEY", api_version="preview").serves_responses
    assert not config(azure, api_key="env:AZURE_TEST_KEY", api_version="2024-12-01-preview").serves_responses
