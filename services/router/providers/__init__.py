"""The provider registry: one adapter class per provider `type`. No if-chains."""
from __future__ import annotations

from collections.abc import Callable

import httpx

from services.router.providers.base import Provider
from services.router.providers.mock import MockProvider
from services.router.providers.openai_compatible import OpenAICompatibleProvider
from shared.config import MockProviderConfig, OpenAIProviderConfig

ProviderFactory = Callable[[object, httpx.AsyncClient], Provider]

PROVIDER_TYPES: dict[str, ProviderFactory] = {
    "openai": lambda config, http: OpenAICompatibleProvider(_as(config, OpenAIProviderConfig), http),
    "mock": lambda config, http: MockProvider(_as(config, MockProviderConfig)),
}


def _as(config: object, kind: type) -> object:
    if not isinstance(config, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(config).__name__}")
    return config


def build_provider(config: OpenAIProviderConfig | MockProviderConfig, http: httpx.AsyncClient) -> Provider:
    return PROVIDER_TYPES[config.type](config, http)
