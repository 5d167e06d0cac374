"""The provider registry: provider `type` → its adapter class (which names its config model).
The one place a provider type is named; adding one is a package beside this file and a line
here. No if-chains."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from services.router.http_client import UpstreamHttp
from services.router.providers.anthropic import AnthropicProvider
from services.router.providers.azure import AzureProvider
from services.router.providers.base import Provider, ProviderConfig
from services.router.providers.bedrock import BedrockProvider
from services.router.providers.gemini import GeminiProvider
from services.router.providers.mock import MockProvider
from services.router.providers.openai import OpenAIProvider
from services.router.providers.openai.presets import PRESETS
from shared.config import GatewayConfig, ProviderEntry

PROVIDER_TYPES: dict[str, type[Provider[Any]]] = {
    **dict.fromkeys(PRESETS, OpenAIProvider),  # openai, groq, xai, mistral, ... as presets of one adapter
    "azure": AzureProvider,
    "mock": MockProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "bedrock": BedrockProvider,
}


def parse_provider(entry: ProviderEntry) -> ProviderConfig:
    """The entry's fields validated by its type's config model; ValueError naming what is
    wrong (never a value: a secret could be one)."""
    adapter = PROVIDER_TYPES.get(entry.type)
    if adapter is None:
        raise ValueError(f"provider {entry.name!r}: unknown type {entry.type!r} (known: {', '.join(sorted(PROVIDER_TYPES))})")
    try:
        return adapter.config_model.model_validate(entry.fields())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"provider {entry.name!r}: {problems}") from None


def build_provider(config: ProviderConfig, http: UpstreamHttp) -> Provider[Any]:
    return PROVIDER_TYPES[config.type](config, http)


def check_providers(config: GatewayConfig) -> None:
    """Refuse a config whose provider entries do not validate (before anything starts)."""
    for entry in config.providers:
        parse_provider(entry)
