"""The provider registry: each provider entry of the config validated by its type's own
config model; a bad entry refused before anything starts, never echoing a secret."""
from __future__ import annotations

from typing import Any

import pytest

from services.router.http_client import UpstreamHttp
from services.router.providers import PROVIDER_TYPES, build_provider, check_providers, parse_provider
from services.router.providers.anthropic import AnthropicConfig, AnthropicProvider
from services.router.providers.bedrock import BedrockConfig
from services.router.providers.gemini import GeminiConfig, GeminiProvider
from services.router.providers.mock import MockConfig, MockProvider
from services.router.providers.openai import OpenAIConfig, OpenAIProvider
from shared.config import GatewayConfig, ProviderEntry

INLINE_KEY = "sk-live-inline-secret-0123456789"


def entry(**fields: Any) -> ProviderEntry:
    return ProviderEntry.model_validate(fields)


def openai(**extra: Any) -> ProviderEntry:
    return entry(name="up", type="openai", base_url="https://api.example.com/v1", **extra)


def refused(provider: ProviderEntry) -> str:
    with pytest.raises(ValueError) as caught:
        check_providers(GatewayConfig(providers=[provider]))
    return str(caught.value)


def test_each_type_is_validated_by_its_own_config_model() -> None:
    up = parse_provider(openai(api_key="env:UP_KEY", headers={"x-org": "a"}))
    assert isinstance(up, OpenAIConfig) and up.api_key == "env:UP_KEY" and up.headers == {"x-org": "a"}
    assert up.timeout_s == 600  # reasoning models: minutes before the first token
    assert isinstance(parse_provider(entry(name="local", type="mock")), MockConfig)
    claude = parse_provider(entry(name="claude", type="anthropic", api_key="env:ANTHROPIC_API_KEY"))
    assert isinstance(claude, AnthropicConfig) and claude.base_url == "https://api.anthropic.com"
    assert claude.anthropic_version == "2023-06-01" and claude.default_max_tokens == 4096 and claude.timeout_s == 600


async def test_the_registry_builds_the_adapter_of_each_type() -> None:
    http = UpstreamHttp()
    assert isinstance(build_provider(parse_provider(openai()), http), OpenAIProvider)
    assert isinstance(build_provider(parse_provider(entry(name="m", type="mock")), http), MockProvider)
    assert isinstance(build_provider(parse_provider(entry(name="c", type="anthropic")), http), AnthropicProvider)
    assert {"openai", "groq", "xai", "mistral", "deepseek", "openrouter", "together", "fireworks", "ollama", "vllm",
            "lmstudio", "azure", "anthropic", "gemini", "bedrock", "mock"} <= set(PROVIDER_TYPES)
    gemini = entry(name="g", type="gemini", api_key="env:GEMINI_API_KEY")
    assert isinstance(build_provider(parse_provider(gemini), http), GeminiProvider)
    await http.close()


def test_a_typo_is_an_error_not_ignored() -> None:
    assert "api_kye" in refused(openai(api_kye="env:X"))


def test_an_unknown_type_names_the_known_ones() -> None:
    message = refused(entry(name="x", type="nosuch"))
    assert "unknown type 'nosuch'" in message and "openai" in message and "mock" in message


def test_inline_secret_is_refused_without_being_echoed() -> None:
    """The error is logged at startup: it must not carry the key it refuses."""
    message = refused(openai(api_key=INLINE_KEY))
    assert "by reference" in message and INLINE_KEY not in message
    message = refused(entry(name="claude", type="anthropic", api_key=INLINE_KEY))
    assert "by reference" in message and INLINE_KEY not in message
    assert "default_max_tokens" in refused(entry(name="claude", type="anthropic", default_max_tokens=0))


def test_gemini_entries_for_ai_studio_and_vertex() -> None:
    studio = parse_provider(entry(name="g", type="gemini", api_key="env:GEMINI_API_KEY"))
    assert isinstance(studio, GeminiConfig) and studio.base_url == "https://generativelanguage.googleapis.com/v1beta"
    vertex = parse_provider(entry(name="v", type="gemini", vertex={
        "project": "my-project", "location": "us-central1", "credentials": "file:/etc/jetgate/sa.json"}))
    assert isinstance(vertex, GeminiConfig) and vertex.vertex is not None and vertex.api_key is None
    assert vertex.vertex.api_base() == "https://us-central1-aiplatform.googleapis.com/v1"


def test_gemini_entry_refuses_two_credentials_and_inline_ones() -> None:
    both = entry(name="g", type="gemini", api_key="env:K",
                 vertex={"project": "p", "location": "us-central1", "credentials": "file:/sa.json"})
    assert "not both" in refused(both)
    inline = '{"private_key": "-----BEGIN PRIVATE KEY-----"}'
    message = refused(entry(name="v", type="gemini", vertex={"project": "p", "location": "eu", "credentials": inline}))
    assert "by reference" in message and "PRIVATE KEY" not in message


def test_bedrock_takes_exactly_one_credential_by_reference() -> None:
    iam = parse_provider(entry(name="aws", type="bedrock", region="us-east-1", access_key_id="env:AWS_ACCESS_KEY_ID",
                               secret_access_key="env:AWS_SECRET_ACCESS_KEY", session_token="env:AWS_SESSION_TOKEN"))
    assert isinstance(iam, BedrockConfig) and iam.base_url() == "https://bedrock-runtime.us-east-1.amazonaws.com"
    assert iam.timeout_s == 600 and iam.connect_timeout_s == 5
    keyed = parse_provider(entry(name="aws", type="bedrock", region="eu-west-3", api_key="env:AWS_BEARER_TOKEN_BEDROCK",
                                 endpoint_url="https://vpce-0abc.bedrock-runtime.eu-west-3.vpce.amazonaws.com/"))
    assert isinstance(keyed, BedrockConfig) and keyed.base_url().endswith(".vpce.amazonaws.com")
    assert "exactly one credential" in refused(entry(name="aws", type="bedrock", region="us-east-1"))
    assert "both access_key_id and secret_access_key" in refused(
        entry(name="aws", type="bedrock", region="us-east-1", access_key_id="env:AWS_ACCESS_KEY_ID"))
    assert "region" in refused(entry(name="aws", type="bedrock", region="mars", api_key="env:K"))
    message = refused(entry(name="aws", type="bedrock", region="us-east-1", access_key_id="env:AWS_ACCESS_KEY_ID",
                            secret_access_key=INLINE_KEY))
    assert "by reference" in message and INLINE_KEY not in message
